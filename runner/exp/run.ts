import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { openWorkspace, type Workspace } from '../workspace.js';
import { currentRevision } from '../git.js';
import { UserError } from '../errors.js';
import { formatDuration } from '../reporter.js';
import type { Io } from '../cli-io.js';
import { exitCodeOf } from '../cli-kit.js';
import { describeAssignment, expandGrid, parseOverride, validateOverrides, type Assignment } from './overrides.js';
import { applyAssignment } from './params-writer.js';
import { ExpStore, type ExpRecord } from './store.js';
import { collectResult } from './collect.js';
import { makeTempWorkspace } from './workspace-copy.js';
import { HEARTBEAT_MS, type Lease } from './claim.js';
import { requeueAndReport, requeued, tempCopyPath } from './reap.js';
import { currentOwner } from '../owner.js';
import { RepoLock, GC_LOCK } from '../repo-lock.js';
import { openLocalCache, stageCacheFor } from '../cache/open.js';
import { missingObjects } from '../cache/checkout.js';
import type { LockEntry } from '../lockfile.js';

export interface ExpRunArgs {
  readonly set: readonly string[];
  readonly name?: string;
  readonly queue: boolean;
  readonly runAll: boolean;
  readonly jobs: number;
  readonly force: boolean;
  /** Stages (or groups, or outputs) to reproduce with their upstream stages, as `repro TARGET…`; all when empty. */
  readonly targets?: readonly string[];
  /** Queue each experiment on the shared scheduler for worker machines (`--distributed`). */
  readonly distributed?: boolean;
  /** With --distributed: return once queued instead of waiting for the results. */
  readonly noWait?: boolean;
  readonly remote?: string;
}

/** The CLI that started us, so experiments run the same lockstep build. */
function lockstepBin(): string {
  return process.argv[1]!;
}

export async function expRunCommand(io: Io, args: ExpRunArgs): Promise<number> {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const store = new ExpStore(ws.stateDir);
  requeueAndReport(io, store);
  if (args.runAll) {
    if (args.distributed) throw new UserError({ message: '--run-all runs the local queue here; to run experiments on workers, queue them with --distributed' });
    if (args.set.length || args.name || args.targets?.length)
      throw new UserError({ message: '--run-all runs what is queued; it takes no -S, --name or targets' });
    return runQueue(io, ws, store, args.jobs);
  }
  const targets = args.targets ?? [];
  if (targets.length) ws.graph.resolveTargets(targets, ws.root); // an unknown target fails now, not in every experiment
  const overrides = args.set.map(parseOverride);
  validateOverrides(overrides, ws.pipeline.params);
  const grid = expandGrid(overrides);
  if (args.name) ExpStore.checkName(args.name);
  const taken = new Set(store.list().map((r) => r.name));
  const names = grid.map((_, i) => {
    const n = args.name ? (grid.length > 1 ? `${args.name}-${i + 1}` : args.name) : store.newName(taken);
    if (taken.has(n))
      throw new UserError({ message: `an experiment named '${n}' already exists`, hint: `choose another --name, or 'lockstep exp remove ${n}'` });
    taken.add(n);
    return n;
  });
  const baseRev = currentRevision(ws.root);
  const records: ExpRecord[] = grid.map((overridesOf, i) => ({
    name: names[i]!,
    status: 'queued',
    createdAt: new Date(Date.now() + i).toISOString(),
    ...(baseRev ? { baseRev } : {}),
    overrides: overridesOf,
    ...(targets.length ? { targets } : {}),
  }));
  if (args.distributed) {
    if (args.queue) throw new UserError({ message: '--queue keeps experiments in this repository; --distributed puts them on the shared queue: choose one' });
    const { submitExperiments } = await import('../queue/submitter.js');
    return submitExperiments(io, ws, store, { records, targets: [...(args.targets ?? [])], remote: args.remote, wait: !args.noWait });
  }
  if (args.queue || grid.length > 1) {
    for (const r of records) {
      store.save(r);
      io.out(`queued ${r.name}${describe(r.overrides)}`);
    }
    if (args.queue) {
      io.out(`run them with 'lockstep exp run --run-all -j N'`);
      return 0;
    }
    return runQueue(io, ws, store, args.jobs);
  }
  return runInWorkspace({ io, ws, store }, records[0]!, args.force);
}

function describe(a: Assignment): string {
  const d = describeAssignment(a);
  return d ? `: ${d}` : '';
}

/**
 * One experiment in the user's workspace, as `dvc exp run` does: params
 * edited, pipeline reproduced. The reproduction runs in this process, as
 * `lockstep repro` would from the repository's root: a child `lockstep repro`
 * cost one more node start and CLI load per experiment. A failure it reports
 * (another run holds the lock, a bad pipeline) is printed as `repro` prints it
 * and recorded as the run's exit code.
 */
async function runInWorkspace({ io, ws, store }: { io: Io; ws: Workspace; store: ExpStore }, rec: ExpRecord, force: boolean): Promise<number> {
  applyAssignment(ws.root, rec.overrides);
  io.out(`running experiment ${rec.name}${describe(rec.overrides)}`);
  const t0 = Date.now();
  const here: Io = { ...io, cwd: ws.root };
  let code: number;
  try {
    const [{ reproduce }, { HumanReporter }] = await Promise.all([import('../reproduce.js'), import('../reporter.js')]);
    const args = { targets: rec.targets ?? [], force, single: false, downstream: false, dry: false, keepGoing: false, jobs: 1 };
    code = await reproduce(here, { ...args, waitMs: 0, runCache: true, allowMissing: false, pull: false, push: false }, new HumanReporter(io.stdout, false));
  } catch (e) {
    code = exitCodeOf(e, here);
  }
  // Interrupted: nothing to record, as when a child repro was ended by the same Ctrl-C.
  if (code === 130 || code === 143) return code;
  const done = await finished(rec, { dir: ws.root, stateDir: ws.stateDir, code, t0, errorDetail: '' });
  store.save(done);
  io.out(`experiment ${rec.name}: ${done.status} in ${formatDuration(done.durationMs!)}`);
  return code === 0 ? 0 : 1;
}

/**
 * Queued experiments, N at a time, each in its own temporary copy of the
 * repository sharing this repository's cache, so the workspace is never touched.
 * Each is claimed before it runs (claim.ts), so several `--run-all` at once
 * share the queue instead of running it twice; the queue is re-read whenever a
 * slot frees up, so experiments queued or requeued meanwhile are run too.
 */
async function runQueue(io: Io, ws: Workspace, store: ExpStore, jobs: number): Promise<number> {
  const queuedNow = store.list().filter((r) => r.status === 'queued').length;
  if (queuedNow === 0) {
    io.out('nothing queued');
    return 0;
  }
  io.out(`running ${queuedNow} queued experiment${queuedNow === 1 ? '' : 's'}, ${jobs} at a time`);
  const running = new Map<string, Running>();
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    for (const { child } of running.values()) {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // gone already
      }
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Leases are checked by pid on this host; other hosts sharing the folder go by the claim files' age.
  const heartbeat = setInterval(() => {
    for (const r of running.values()) store.claims.heartbeat(r.rec.name, r.lease);
  }, HEARTBEAT_MS);
  heartbeat.unref();
  const tried = new Set<string>();
  let ran = 0;
  let failures = 0;
  try {
    const inFlight = new Set<Promise<void>>();
    while (!interrupted) {
      while (inFlight.size < jobs && !interrupted) {
        const next = claimNext(store, tried);
        if (!next) break;
        ran++;
        const p: Promise<void> = runOne({ io, ws, store }, next.rec, next.lease, running, () => interrupted)
          .then((ok) => {
            if (!ok) failures++;
          })
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      if (!inFlight.size) break;
      await Promise.race(inFlight);
    }
    await Promise.allSettled(inFlight);
  } finally {
    clearInterval(heartbeat);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (interrupted) {
    io.err('interrupted: unfinished experiments stay queued');
    return 130;
  }
  if (ran < queuedNow) io.out(`${queuedNow - ran} queued experiment${queuedNow - ran === 1 ? ' was' : 's were'} run by another runner`);
  io.out(`${ran - failures} succeeded, ${failures} failed`);
  return failures ? 1 : 0;
}

interface Running {
  readonly child: ChildProcess;
  readonly rec: ExpRecord;
  readonly lease: Lease;
}

/** The next queued experiment nobody else has claimed, now claimed by us and marked running. */
function claimNext(store: ExpStore, tried: Set<string>): { rec: ExpRecord; lease: Lease } | undefined {
  for (const r of store.list()) {
    if (r.status !== 'queued' || tried.has(r.name)) continue;
    tried.add(r.name);
    const lease = store.claims.tryClaim(r.name, tempCopyPath(r.name, Math.random().toString(36).slice(2, 10)));
    if (!lease) continue;
    // Claimed; but another runner may have finished it between our listing and our claim.
    const cur = store.read(r.name);
    if (!cur || cur.status !== 'queued') {
      store.claims.release(r.name, lease);
      continue;
    }
    // Recorded before the copy is made, so a crash from here on leaves a lease that names what to clean up.
    store.save({ ...cur, status: 'running', lease });
    return { rec: cur, lease };
  }
  return undefined;
}

/** `stopped`: whether the runner was interrupted meanwhile (the copy is made asynchronously, so a signal can arrive before `repro` is started). */
async function runOne(
  { io, ws, store }: { io: Io; ws: Workspace; store: ExpStore },
  rec: ExpRecord,
  lease: Lease,
  running: Map<string, Running>,
  stopped: () => boolean,
): Promise<boolean> {
  const t0 = Date.now();
  const dir = lease.dir;
  io.out(`▶ ${rec.name}: running${describe(rec.overrides)}`);
  const logFile = store.logFile(rec.name);
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const log = fs.openSync(logFile, 'w');
  const cacheDir = openLocalCache(ws.stateDir).settings.dir;
  try {
    await makeTempWorkspace(ws, dir);
    applyAssignment(dir, rec.overrides);
    // One cache for every experiment: what one computed, the others (and `exp apply`) restore.
    const code = stopped()
      ? 130
      : await reproIn({
          dir,
          args: ['repro', ...(rec.targets ?? [])],
          logFd: log,
          env: { LOCKSTEP_CACHE_DIR: cacheDir },
          started: (child) => {
            if (child.pid) store.save({ ...rec, status: 'running', lease: { ...lease, child: currentOwner(child.pid) } });
            running.set(rec.name, { child, rec, lease });
          },
        });
    running.delete(rec.name);
    if (code === 130 || code === 143) {
      await removeCopy(dir);
      store.save(requeued(rec)); // interrupted: back in the queue, as it was
      return false;
    }
    const done = await finished(rec, { dir, stateDir: ws.stateDir, code, t0, errorDetail: `; see ${path.relative(ws.root, logFile)}` });
    await record(ws, store, done, { dir, warn: (m) => io.err(`${rec.name}: ${m}`) });
    io.out(
      `${code === 0 ? '✓' : '✗'} ${rec.name}: ${done.status} in ${formatDuration(done.durationMs!)}${code === 0 ? '' : ` (log: ${path.relative(ws.root, logFile)})`}`,
    );
    return code === 0;
  } catch (e) {
    await removeCopy(dir);
    store.save({ ...requeued(rec), status: 'failed', error: (e as Error).message, finishedAt: new Date().toISOString() });
    io.out(`✗ ${rec.name}: failed: ${(e as Error).message}`);
    return false;
  } finally {
    running.delete(rec.name);
    fs.closeSync(log);
    await removeCopy(dir);
    store.claims.release(rec.name, lease);
  }
}

/**
 * Record a finished experiment so that gc can never leave it without its
 * outputs: under the gc lock, put back into the cache any object its lock
 * entries need that is not there (a concurrent gc may have removed an object
 * the run re-used rather than re-stored), from the temporary copy that still
 * holds the outputs; then save the record, which gc reads as "needed".
 */
async function record(ws: Workspace, store: ExpStore, done: ExpRecord, { dir, warn }: { dir: string; warn: (m: string) => void }): Promise<void> {
  const gcLock = await RepoLock.acquire(ws.stateDir, `exp run (recording ${done.name})`, 10 * 60_000, GC_LOCK);
  try {
    if (done.lock) await ensureInCache(ws, dir, done.lock, warn);
    await removeCopy(dir);
    store.save(done);
  } finally {
    gcLock.release();
  }
}

async function ensureInCache(ws: Workspace, dir: string, lock: Readonly<Record<string, LockEntry>>, warn: (m: string) => void): Promise<void> {
  const cache = openLocalCache(ws.stateDir);
  let copy: Workspace | undefined;
  for (const entry of Object.values(lock)) {
    for (const o of entry.outs) {
      let missing: boolean;
      try {
        missing = (await missingObjects(cache.store, o)).length > 0;
      } catch {
        missing = true; // an unreadable manifest is as good as none
      }
      if (!missing) continue;
      copy ??= openWorkspace(dir, { checkDeps: false });
      const state = await copy.hasher.hashPath(path.join(dir, o.path));
      if (state.kind === 'missing' || state.hash !== o.hash) {
        warn(`output '${o.path}' is neither in the cache nor as recorded in its run; 'exp apply' will not be able to restore it`);
        continue;
      }
      await stageCacheFor(copy, cache, { warn: () => {}, useRunCache: false }).save({ path: o.path, state });
    }
  }
}

/**
 * Remove a temporary copy. Asynchronous on purpose: the unlinks run on
 * libuv's threads side by side, which hides the disk's latency (on this
 * machine's ext4 with online discard, one by one they took up to 1.5 s for a
 * lead-pipeline copy), and the other experiment's events are not held up.
 */
function removeCopy(dir: string): Promise<void> {
  return fs.promises.rm(dir, { recursive: true, force: true });
}

/**
 * Run the lockstep CLI (`repro …`) in an experiment's temporary workspace,
 * its output going to `logFd`; its own process group, so it can be ended
 * with every stage it started. Resolves to its exit code. Shared by
 * `--run-all` and `lockstep worker`.
 */
export function reproIn({
  dir,
  args,
  logFd,
  env,
  started,
}: {
  dir: string;
  args: readonly string[];
  logFd: number;
  env: Record<string, string>;
  started?: (child: ChildProcess) => void;
}): Promise<number> {
  const child = spawn(process.execPath, [lockstepBin(), ...args], {
    cwd: dir,
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: { ...process.env, ...env },
  });
  started?.(child);
  return exitOf(child);
}

/** The record of a run that ended with `code`, with what it left in `dir`. */
async function finished(
  rec: ExpRecord,
  { dir, stateDir, code, t0, errorDetail }: { dir: string; stateDir: string; code: number; t0: number; errorDetail: string },
): Promise<ExpRecord> {
  return {
    ...rec,
    ...(await collectResult(dir, stateDir)),
    status: code === 0 ? 'success' : 'failed',
    finishedAt: new Date().toISOString(),
    durationMs: Date.now() - t0,
    ...(code === 0 ? {} : { error: `repro exited with code ${code}${errorDetail}` }),
  };
}

function exitOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('error', () => resolve(127));
    child.once('close', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 143)));
  });
}
