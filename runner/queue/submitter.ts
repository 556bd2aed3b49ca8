import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { Queue } from 'bullmq';
import type { Workspace } from '../workspace.js';
import type { Io } from '../cli-io.js';
import { UserError } from '../errors.js';
import { VERSION } from '../version.js';
import { hashFile } from '../hash/xxhash.js';
import { objectKey } from '../cache/layout.js';
import { openLocalCache } from '../cache/open.js';
import { push } from '../cache/sync.js';
import { remoteFor } from '../remote/open.js';
import { lockedOuts } from '../cache/checkout.js';
import { withRetries } from '../remote/retry.js';
import type { RemoteStore } from '../remote/types.js';
import { describeAssignment } from '../exp/overrides.js';
import type { ExpRecord, ExpStore } from '../exp/store.js';
import { formatDuration } from '../reporter.js';
import { requireSchedulerConfig } from './config.js';
import { openQueue } from './connection.js';
import { jobIdOf, type ExpJobData } from './job.js';
import { jobOptions, syncRecords } from './sync.js';

export interface SubmitArgs {
  /** The experiments to queue: names chosen, overrides set. */
  readonly records: readonly ExpRecord[];
  readonly targets: readonly string[];
  readonly remote?: string;
  /** Wait for the results (default), or return once queued. */
  readonly wait: boolean;
}

/** The commit the workspace is at; refuses a workspace whose tracked files differ from it (the worker would not see them). */
export function cleanCommit(root: string): string {
  const head = spawnSync('git', ['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'], { cwd: root, encoding: 'utf8' });
  if (head.status !== 0)
    throw new UserError({
      message: 'a distributed experiment runs a git commit, and this repository has none',
      hint: "commit your pipeline first ('git add -A && git commit')",
    });
  const st = spawnSync('git', ['status', '--porcelain', '--untracked-files=no', '--', '.'], { cwd: root, encoding: 'utf8' });
  const dirty = st.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.slice(3));
  if (dirty.length) {
    const shown = dirty.slice(0, 3).join(', ') + (dirty.length > 3 ? `, and ${dirty.length - 3} more` : '');
    throw new UserError({
      message: `uncommitted changes (${shown}): workers run the commit, so they would not see them; commit them first`,
    });
  }
  return head.stdout.trim();
}

/**
 * A git bundle of the commit, stored on the remote as a content-addressed
 * object: a worker that cannot reach our git server (or a commit not pushed
 * anywhere) still gets the exact sources.
 */
export async function uploadBundle(root: string, remote: RemoteStore): Promise<string> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bundle-'));
  try {
    const file = path.join(tmp, 'commit.bundle');
    const r = spawnSync('git', ['bundle', 'create', '-q', file, 'HEAD'], {
      cwd: root,
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`git bundle failed: ${r.stderr.trim()}`);
    const { hash } = await hashFile(file);
    const key = objectKey(hash);
    if (!(await remote.existing([key])).has(key)) await withRetries(() => remote.upload(key, file));
    return hash;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function describe(rec: ExpRecord): string {
  const d = describeAssignment(rec.overrides);
  return d ? `: ${d}` : '';
}

/** `exp run … --distributed`: each experiment becomes a job on the shared queue. */
export async function submitExperiments(io: Io, ws: Workspace, store: ExpStore, args: SubmitArgs): Promise<number> {
  const cfg = requireSchedulerConfig(ws.stateDir);
  const commit = cleanCommit(ws.root);
  const { cfg: remoteCfg, store: remote } = await remoteFor(ws, args.remote);
  let queue: Queue | undefined;
  try {
    queue = await openQueue(cfg);
    const bundle = await uploadBundle(ws.root, remote);
    // The commit's outputs go to the remote too, so workers restore the stages the experiments do not change.
    const cache = openLocalCache(ws.stateDir);
    const outs = lockedOuts(ws, []).map(({ out }) => ({ path: out.path, out }));
    if (!remoteCfg.readOnly) await push(cache, remote, outs, [], { jobs: remoteCfg.jobs });

    const known = new Map(
      store
        .list()
        .filter((r) => r.distributed)
        .map((r) => [r.distributed!.jobId, r]),
    );
    let added = 0;
    const followed = new Set<string>();
    for (const rec of args.records) {
      const data: ExpJobData = {
        kind: 'experiment',
        version: VERSION,
        name: rec.name,
        commit,
        bundle,
        remote: remoteCfg.name,
        overrides: rec.overrides,
        targets: [...args.targets],
        submittedAt: rec.createdAt,
      };
      const jobId = jobIdOf(data);
      const mine = known.get(jobId);
      if (mine) {
        io.out(
          mine.status === 'success'
            ? `${mine.name} already ran with these params at this commit`
            : `${mine.name} is already queued with these params (${mine.status})`,
        );
        followed.add(mine.name);
        continue;
      }
      const existing = await queue.getJob(jobId);
      if (!existing) await queue.add(rec.name, data, jobOptions(jobId));
      const saved: ExpRecord = {
        ...rec,
        baseRev: commit,
        status: 'queued',
        distributed: {
          jobId,
          queue: queue.name,
          job: existing ? (existing.data as ExpJobData) : data,
        },
      };
      store.save(saved);
      known.set(jobId, saved);
      added++;
      followed.add(rec.name);
      io.out(`queued ${rec.name} on '${queue.name}'${describe(rec)}${existing ? ' (already on the queue from another submitter)' : ''}`);
    }
    if (!args.wait) {
      if (added) io.out(`'lockstep queue status' follows them; 'lockstep exp show' lists their results`);
      return 0;
    }
    return await waitForResults(io, store, queue, followed);
  } finally {
    await queue?.close();
    await remote.close();
  }
}

/**
 * Follow the named experiments until each has succeeded or failed, printing
 * each change once. Redis going away is said once and waited out; jobs it
 * lost are queued again from the records.
 */
async function waitForResults(io: Io, store: ExpStore, queue: Queue, names: Set<string>): Promise<number> {
  const said = new Map<string, string>();
  let down = false;
  let interrupted = false;
  const stop = () => void (interrupted = true);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // One sync at a time: while Redis is away a sync waits for it, and must not be stacked with more.
  let pending: ReturnType<typeof syncRecords> | undefined;
  try {
    for (;;) {
      try {
        pending ??= syncRecords(store, queue, { requeue: true }).finally(() => (pending = undefined));
        const { requeued } = await withTimeout(pending, 5000);
        if (down) io.err('scheduler is back');
        down = false;
        for (const n of requeued) if (names.has(n)) io.out(`↻ ${n}: the scheduler had lost it; queued again`);
      } catch (e) {
        if (!down) io.err(`warning: scheduler unreachable (${(e as Error).message}); waiting for it (Ctrl-C to stop waiting: the jobs stay queued)`);
        down = true;
      }
      const recs = store.list().filter((r) => names.has(r.name));
      for (const r of recs) {
        const line =
          r.status === 'running'
            ? `▶ ${r.name}: running on ${r.distributed?.worker ?? 'a worker'}`
            : r.status === 'success'
              ? `✓ ${r.name}: done in ${formatDuration(r.durationMs ?? 0)} on ${r.distributed?.worker ?? 'a worker'}`
              : r.status === 'failed'
                ? `✗ ${r.name}: failed: ${r.error ?? ''} ('lockstep queue logs ${r.name}')`
                : '';
        if (line && said.get(r.name) !== line) {
          io.out(line);
          said.set(r.name, line);
        }
      }
      if (recs.every((r) => r.status === 'success' || r.status === 'failed')) {
        const failed = recs.filter((r) => r.status === 'failed').length;
        io.out(`${recs.length - failed} succeeded, ${failed} failed`);
        return failed ? 1 : 0;
      }
      if (interrupted) {
        io.err('stopped waiting: the experiments stay queued; `lockstep exp show` collects their results');
        return 130;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
