import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import type { ClassificationMetrics } from '../models/metrics.js';

/** A file the run produced: its workspace path and the content hash the Lockstep cache keeps it under. */
export interface Artifact {
  readonly path: string;
  readonly hash: string;
}

/**
 * What one training run was (MLflow's run, as a JSON file): train writes one per
 * model among its outputs; `leads` files them in mlruns/ (run-store.ts).
 */
export interface RunRecord {
  readonly id: string;
  readonly stage: string;
  readonly model: string;
  readonly family: string;
  readonly started_at: string;
  readonly finished_at: string;
  readonly duration_ms: number;
  readonly git: { readonly commit: string; readonly dirty: boolean } | null;
  /** md5 of the training and test feature files, in that order: the data the model saw. */
  readonly data_checksum: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly metrics: { readonly train: ClassificationMetrics; readonly test: ClassificationMetrics; readonly cv_score: number };
  /** What the run produced; fetch an artifact from the cache by its hash after the workspace moved on. */
  readonly artifacts: Readonly<Record<string, Artifact>>;
}

/** Sortable by time, unique across concurrent processes. */
export function newRunId(startedAt: Date): string {
  const stamp = startedAt.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${crypto.randomBytes(4).toString('hex')}`;
}

/** HEAD's commit and whether the work tree differs from it; null outside a git repository. */
export function gitRevision(cwd: string): { commit: string; dirty: boolean } | null {
  try {
    const run = (args: string[]): string => execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const commit = run(['rev-parse', 'HEAD']);
    const dirty = run(['status', '--porcelain', '--untracked-files=no']) !== '';
    return { commit, dirty };
  } catch {
    return null;
  }
}
