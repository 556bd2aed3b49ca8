import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import type { Job } from 'bullmq';
import { openWorkspace, type Workspace } from '../workspace.js';
import type { Io } from '../cli-io.js';
import { VERSION } from '../version.js';
import { UserError } from '../errors.js';
import { hashFile } from '../hash/xxhash.js';
import { objectKey } from '../cache/layout.js';
import { openLocalCache, type LocalCache } from '../cache/open.js';
import { fetchObjects, newReport, push } from '../cache/sync.js';
import { lockFingerprint } from '../observe.js';
import { remoteFor } from '../remote/open.js';
import { lockedOuts } from '../cache/checkout.js';
import { withRetries } from '../remote/retry.js';
import type { RemoteStore } from '../remote/types.js';
import { describeAssignment } from '../exp/overrides.js';
import { applyAssignment } from '../exp/params-writer.js';
import { makeWorkspaceAt } from '../exp/workspace-copy.js';
import { reproIn } from '../exp/run.js';
import { collectResult } from '../exp/collect.js';
import { formatDuration } from '../reporter.js';
import { redactUrl, requireSchedulerConfig } from './config.js';
import { checkReachable, connectionOf, plainClient, workerName } from './connection.js';
import { cancelKey } from './commands.js';
import { refusal, type ExpJobResult, type ExpJobProgress, type JobData, type StageJobResult } from './job.js';
import type { LockEntry } from '../lockfile.js';

export interface WorkerArgs {
  /** Jobs at once. */
  readonly jobs: number;
  readonly queue?: string;
  /** Take one job, run it, exit. */
  readonly once: boolean;
  /** Exit after this many seconds with nothing to do. */
  readonly idleExitS?: number;
}

const JOB_DIR_PREFIX = 'lockstep-job-';

/**
 * `lockstep worker`: takes experiment jobs from the shared queue and runs
 * each in a temporary workspace at the job's commit, with `repro --pull
 * --push` (stages restored from the remote when anyone computed them before;
 * each stage's results uploaded as soon as it finishes). BullMQ gives
 * at-least-once delivery: a worker that dies stops renewing its claim, and
 * after `lock_duration_ms` another worker takes the job over.
 */
export async function workerCommand(io: Io, args: WorkerArgs): Promise<number> {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const cfg = requireSchedulerConfig(ws.stateDir);
  const queueName = args.queue ?? cfg.queue;
  await checkReachable(cfg);
  removeOrphanedDirs();
  const cache = openLocalCache(ws.stateDir);
  const { Worker, UnrecoverableError, DelayedError } = await import('bullmq');
  const name = workerName();
  const running = new Map<string, ChildProcess>();
  let stopping: NodeJS.Signals | undefined;
  let active = 0;
  let lastBusy = Date.now();
  const gitLock = mutex();
  const redis = await plainClient(cfg);

  const run = async (job: Job<JobData>, token?: string): Promise<ExpJobResult | StageJobResult> => {
    const why = refusal(job.data, VERSION);
    if (why) {
      io.err(`✗ job ${job.id}: refused: ${why}`);
      throw new UnrecoverableError(`refused by worker ${name}: ${why}`);
    }
    const d = job.data;
    const t0 = Date.now();
    const progress = (p: Omit<ExpJobProgress, 'worker'> = {}) => job.updateProgress({ worker: name, ...p });
    await progress();
    const what = d.kind === 'experiment' ? describeAssignment(d.overrides) : `stage ${d.stage}`;
    io.out(`▶ ${d.name} (${job.id}): running${what ? `: ${what}` : ''}${job.attemptsStarted > 1 ? ` (attempt ${job.attemptsStarted})` : ''}`);
    // A remote this machine does not know (or cannot open) is not transient: say so, do not retry.
    const { cfg: rcfg, store: remote } = await remoteFor(ws, d.remote).catch((e: unknown) => {
      if (e instanceof UserError) throw new UnrecoverableError(`worker ${name}: ${e.message}`);
      throw e;
    });
    let dir: string | undefined;
    let logFile: string | undefined;
    try {
      await gitLock(() => ensureCommit(ws, cache, remote, d));
      dir = makeWorkspaceAt(ws, d.commit, JOB_DIR_PREFIX);
      if (d.kind === 'experiment') applyAssignment(dir, d.overrides);
      else withUpstream(dir, d.upstream);
      logFile = path.join(ws.stateDir, 'worker', 'logs', `${job.id}.log`);
      fs.mkdirSync(path.dirname(logFile), { recursive: true });
      const fd = fs.openSync(logFile, 'w');
      let code: number;
      let cancelled = false;
      const key = cancelKey(cfg.prefix, queueName, job.id!);
      const watch = setInterval(() => {
        void redis
          .get(key)
          .then((v) => {
            if (!v || cancelled) return;
            cancelled = true;
            io.out(`✗ ${d.name}: cancelled`);
            killGroup(running.get(job.id!));
          })
          .catch(() => undefined);
      }, 1000);
      try {
        const reproArgs = ['repro', '--pull', ...(rcfg.readOnly ? [] : ['--push']), '-r', rcfg.name, ...(d.kind === 'experiment' ? d.targets : [d.stage])];
        code = await reproIn({
          dir,
          args: reproArgs,
          logFd: fd,
          env: {
            LOCKSTEP_CACHE_DIR: cache.settings.dir,
            LOCKSTEP_EXIT_WITH_PARENT: '1',
          },
          started: (c) => running.set(job.id!, c),
        });
      } finally {
        clearInterval(watch);
        running.delete(job.id!);
        fs.closeSync(fd);
      }
      // The log is kept as a cache object on the remote, so a failed run's output can be read from anywhere.
      const log = await storeLog(cache, rcfg.readOnly ? undefined : remote, logFile);
      await progress({ log });
      if (stopping && (code === 130 || code === 143)) {
        // This worker is being stopped: give the job back now rather than after its claim runs out.
        io.out(`↩ ${d.name}: given back to the queue (worker stopping)`);
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError();
      }
      if (cancelled) {
        await redis.del(key).catch(() => undefined);
        throw new UnrecoverableError(`cancelled (on ${name})`);
      }
      if (code !== 0) {
        const failed = lastFailure(logFile);
        io.out(`✗ ${d.name}: failed${failed ? `: ${failed}` : ''}`);
        throw new UnrecoverableError(`${failed ?? `repro exited with code ${code}`} (on ${name}; 'lockstep queue logs ${d.name}')`);
      }
      if (!rcfg.readOnly) await pushResults(cache, remote, dir, rcfg.jobs);
      const durationMs = Date.now() - t0;
      io.out(`✓ ${d.name}: done in ${formatDuration(durationMs)}`);
      if (d.kind === 'stage') {
        const entry = openWorkspace(dir, { checkDeps: false }).lock.get(d.stage);
        if (!entry) throw new UnrecoverableError(`stage '${d.stage}' left no lock entry (on ${name})`);
        return { worker: name, durationMs, log, entry, how: stageOutcome(logFile, d.stage) };
      }
      return { ...(await collectResult(dir, ws.stateDir)), worker: name, durationMs, log };
    } finally {
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
      // The log lives on as a cache object (here and on the remote).
      if (logFile) fs.rmSync(logFile, { force: true });
      await remote.close();
    }
  };

  const worker = new Worker<JobData, ExpJobResult | StageJobResult>(
    queueName,
    async (job, token) => {
      active++;
      try {
        return await run(job, token);
      } finally {
        active--;
        lastBusy = Date.now();
      }
    },
    {
      connection: connectionOf(cfg),
      prefix: cfg.prefix,
      name,
      concurrency: args.once ? 1 : args.jobs,
      lockDuration: cfg.lockDurationMs,
      stalledInterval: cfg.stalledIntervalMs,
      // A job whose worker died twice still gets a third try before it is marked failed.
      maxStalledCount: 2,
      removeOnComplete: { count: 100_000 },
      removeOnFail: { count: 100_000 },
      drainDelay: 1,
    },
  );
  let lastError = 0;
  worker.on('error', (e) => {
    // Redis away: BullMQ reconnects by itself; say so at most every 30 s, not at every retry.
    if (Date.now() - lastError > 30_000) io.err(`warning: scheduler ${redactUrl(cfg.url)}: ${(e as Error).message}; retrying`);
    lastError = Date.now();
  });
  worker.on('failed', (job, e) => {
    if (job && e.name !== 'DelayedError' && !(e instanceof UnrecoverableError) && job.attemptsMade < (job.opts.attempts ?? 1)) {
      io.err(`warning: ${job.data.name}: ${e.message}; it will be tried again`);
    }
  });
  if (args.once) worker.once('active', () => void worker.close());
  io.out(`worker ${name} (Lockstep ${VERSION}) takes jobs from '${queueName}' on ${redactUrl(cfg.url)}, ${args.once ? 1 : args.jobs} at a time`);

  const onSignal = (s: NodeJS.Signals) => {
    if (stopping) return;
    stopping = s;
    io.err(`${s} received: stopping; running jobs go back to the queue`);
    for (const c of running.values()) killGroup(c);
    void worker.close();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Idle: nothing running here and nothing waiting on the queue (a job retried after a backoff waits as 'delayed').
  const { Queue } = await import('bullmq');
  const counts = args.idleExitS !== undefined ? new Queue(queueName, { connection: connectionOf(cfg), prefix: cfg.prefix }) : undefined;
  counts?.on('error', () => undefined);
  let checking = false;
  const idle =
    args.idleExitS !== undefined
      ? setInterval(() => {
          if (checking || active > 0 || Date.now() - lastBusy < args.idleExitS! * 1000) return;
          checking = true;
          void counts!
            .getJobCounts('waiting', 'delayed', 'prioritized')
            .then((c) => {
              if (active > 0) return;
              if ((c.waiting ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0) > 0) {
                lastBusy = Date.now();
                return;
              }
              io.out(`idle for ${args.idleExitS} s: exiting`);
              clearInterval(idle);
              void worker.close();
            })
            .catch(() => undefined)
            .finally(() => (checking = false));
        }, 200)
      : undefined;
  try {
    await new Promise<void>((resolve) => worker.once('closed', () => resolve()));
  } finally {
    await counts?.close();
    await redis.quit().catch(() => redis.disconnect());
    clearInterval(idle);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return stopping === 'SIGINT' ? 130 : stopping ? 143 : 0;
}

/** End a run and every stage it started (its own process group). */
function killGroup(c: ChildProcess | undefined): void {
  if (c?.pid === undefined) return;
  try {
    process.kill(-c.pid, 'SIGTERM');
  } catch {
    // already gone
  }
}

/** One at a time: concurrent `git fetch`es into one repository fight over its lock files. */
function mutex() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(f: () => Promise<T>): Promise<T> => {
    const next = tail.then(f, f);
    tail = next.catch(() => undefined);
    return next;
  };
}

function hasCommit(root: string, commit: string): boolean {
  return spawnSync('git', ['cat-file', '-e', `${commit}^{commit}`], { cwd: root }).status === 0;
}

/** Make the job's commit present in this worker's repository, from the bundle the submitter put on the remote if need be. */
async function ensureCommit(ws: Workspace, cache: LocalCache, remote: RemoteStore, d: JobData): Promise<void> {
  if (hasCommit(ws.root, d.commit)) return;
  if (!d.bundle) throw new Error(`commit ${d.commit} is not in this worker's repository, and the job names no bundle`);
  const report = newReport();
  await fetchObjects(cache, remote, [d.bundle], { jobs: 1, report, label: () => 'git bundle' });
  if (report.failures.length) throw new Error(report.failures.map((f) => `${f.what}: ${f.why}`).join('; '));
  if (!cache.store.has(d.bundle)) throw new Error(`the git bundle of commit ${d.commit} is not on remote '${remote.name}'`);
  // A ref keeps the fetched commit from being garbage-collected while jobs may still need it.
  const r = spawnSync('git', ['fetch', '-q', cache.store.pathOf(d.bundle), `+HEAD:refs/lockstep/jobs/${d.commit}`], { cwd: ws.root, encoding: 'utf8' });
  if (r.status !== 0 || !hasCommit(ws.root, d.commit)) throw new Error(`cannot read commit ${d.commit} from its bundle: ${r.stderr.trim()}`);
}

/** The log into the local cache and (when writable) the remote; its content hash. */
async function storeLog(cache: LocalCache, remote: RemoteStore | undefined, file: string): Promise<string> {
  const { hash } = await hashFile(file);
  await cache.store.addFile(file, hash, 'copy', 'job log');
  if (remote) {
    const key = objectKey(hash);
    await withRetries(() => remote.upload(key, cache.store.pathOf(hash)));
  }
  return hash;
}

/**
 * Everything the finished run needs on the remote: outputs recorded in its
 * lock and their run-cache entries (most were pushed stage by stage already;
 * this catches outputs restored from this worker's own cache).
 */
async function pushResults(cache: LocalCache, remote: RemoteStore, dir: string, jobs: number): Promise<void> {
  const ws = openWorkspace(dir, { checkDeps: false });
  const outs = lockedOuts(ws, []).map(({ out }) => ({ path: out.path, out }));
  const fps: string[] = [];
  for (const e of ws.lock.stages.values()) {
    const fp = await lockFingerprint(e);
    if (cache.runs.has(fp)) fps.push(fp);
  }
  const report = await withRetries(() => push(cache, remote, outs, cache.runs.trust.readOnly ? [] : fps, { jobs }));
  // Not unrecoverable: BullMQ tries the job again with backoff, and the stages are then restored, not rerun.
  if (report.failures.length) throw new Error(`results not pushed to '${remote.name}': ${report.failures.map((f) => `${f.what}: ${f.why}`).join('; ')}`);
}

/** Upstream stages' results into the workspace's pipeline.lock: repro restores their outputs from the remote instead of running them. */
function withUpstream(dir: string, upstream: Readonly<Record<string, LockEntry>>): void {
  if (Object.keys(upstream).length === 0) return;
  const ws = openWorkspace(dir, { checkDeps: false });
  for (const [name, entry] of Object.entries(upstream)) ws.lock.set(name, entry);
  ws.lock.write(ws.graph.order);
}

/** How repro dealt with the stage: ran, restored or skipped (from its output line). */
function stageOutcome(logFile: string, stage: string): string {
  for (const l of fs.readFileSync(logFile, 'utf8').split('\n')) {
    if (l.startsWith(`✓ ${stage}: `)) return 'ran';
    if (l.startsWith(`↺ ${stage}: `)) return 'restored';
    if (l.startsWith(`· ${stage}: `)) return 'skipped';
  }
  return 'ran';
}

/** The line saying which stage failed and why, from repro's output. */
function lastFailure(logFile: string): string | undefined {
  const lines = fs.readFileSync(logFile, 'utf8').split('\n');
  return lines
    .reverse()
    .find((l) => /^✗ /.test(l))
    ?.slice(2);
}

/** Workspaces of jobs whose worker was killed (kill -9 leaves them behind): removed when no live process owns them. */
function removeOrphanedDirs(): void {
  let names: string[];
  try {
    names = fs.readdirSync(os.tmpdir());
  } catch {
    return;
  }
  for (const n of names) {
    const m = new RegExp(`^${JOB_DIR_PREFIX}(\\d+)-`).exec(n);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') fs.rmSync(path.join(os.tmpdir(), n), { recursive: true, force: true });
    }
  }
}
