import { createHash } from 'node:crypto';
import { canonicalJson } from '../config/params.js';
import type { Assignment } from '../exp/overrides.js';
import type { ExpRecord } from '../exp/store.js';
import type { LockEntry } from '../lockfile.js';

/**
 * One experiment as a job on the shared queue. Everything a worker needs to
 * run it is here or on the remote: the commit (and the git bundle holding it,
 * stored on the remote as a cache object), the params to set, the targets.
 */
export interface ExpJobData {
  readonly kind: 'experiment';
  /** The Lockstep version that queued it; a worker of another version refuses it. */
  readonly version: string;
  /** The experiment's name in the submitter's repository. */
  readonly name: string;
  readonly commit: string;
  /** Content hash of a `git bundle` of the commit, uploaded to the remote as an object. */
  readonly bundle?: string;
  /** Which remote (by name) holds the bundle, the inputs and the results. */
  readonly remote: string;
  readonly overrides: Assignment;
  readonly targets: readonly string[];
  readonly submittedAt: string;
}

/**
 * One stage of `repro --distributed`: run (or restore) `stage` at the commit,
 * its upstream stages' results given as lock entries (their outputs are on the
 * remote), so the worker restores them instead of running them.
 */
export interface StageJobData {
  readonly kind: 'stage';
  readonly version: string;
  readonly name: string;
  readonly stage: string;
  readonly commit: string;
  readonly bundle?: string;
  readonly remote: string;
  /** Lock entries of the upstream stages, as their jobs produced them. */
  readonly upstream: Readonly<Record<string, LockEntry>>;
  readonly submittedAt: string;
}

export type JobData = ExpJobData | StageJobData;

/** A stage job's result: the stage's lock entry and how it came about. */
export interface StageJobResult {
  readonly worker: string;
  readonly durationMs: number;
  readonly log?: string;
  readonly entry: LockEntry;
  /** 'ran', 'restored' (from the run-cache or the lock) or 'skipped' (up to date). */
  readonly how: string;
}

/** What a worker hands back: small, since objects travel through the remote, never through Redis. */
export interface ExpJobResult extends Pick<ExpRecord, 'paramsText' | 'params' | 'metrics' | 'metricsText' | 'lock'> {
  readonly worker: string;
  readonly durationMs: number;
  /** Content hash of the run's output (every stage's stdout and stderr), an object on the remote. */
  readonly log?: string;
}

/** Progress a worker reports while it runs a job (and keeps after a failure: the log's hash). */
export interface ExpJobProgress {
  readonly worker: string;
  readonly log?: string;
}

/**
 * The job id: a digest of what the job computes (commit, params, targets),
 * so queueing the same grid twice adds nothing — BullMQ ignores an add whose
 * id exists. The name is left out on purpose: it is only a label.
 */
export function jobIdOf(d: Pick<ExpJobData, 'commit' | 'overrides' | 'targets'>): string {
  const digest = createHash('sha256')
    .update(
      canonicalJson({
        commit: d.commit,
        overrides: d.overrides,
        targets: [...d.targets],
      }),
    )
    .digest('hex');
  // BullMQ ids must not be integers or contain ':'.
  return `x${digest.slice(0, 24)}`;
}

/** A stage job's id: the commit, the stage and what its upstream stages produced (a restarted submitter finds its jobs again). */
export function stageJobIdOf(d: Pick<StageJobData, 'commit' | 'stage' | 'upstream'>): string {
  const digest = createHash('sha256')
    .update(canonicalJson({ commit: d.commit, stage: d.stage, upstream: d.upstream }))
    .digest('hex');
  return `s${digest.slice(0, 24)}`;
}

/** Why this worker cannot run the job, or undefined. */
export function refusal(d: Partial<JobData> | undefined, version: string): string | undefined {
  if (!d || (d.kind !== 'experiment' && d.kind !== 'stage') || typeof d.commit !== 'string' || typeof d.name !== 'string') return 'it is not a Lockstep job';
  if (d.version !== version)
    return `it was queued by Lockstep ${String(d.version)} and this worker runs ${version}; run a ${String(d.version)} worker, or queue it again with this version`;
  return undefined;
}
