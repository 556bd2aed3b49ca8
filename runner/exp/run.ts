import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { openWorkspace, type Workspace } from '../workspace.js';
import { currentRevision } from '../git.js';
import { UserError } from '../errors.js';
import { formatDuration } from '../reporter.js';
import type { Io } from '../cli-io.js';
import { describeAssignment, expandGrid, parseOverride, validateOverrides, type Assignment } from './overrides.js';
import { applyAssignment } from './params-writer.js';
import { ExpStore, type ExpRecord } from './store.js';
import { collectResult } from './collect.js';
import { makeTempWorkspace } from './workspace-copy.js';

export interface ExpRunArgs {
  readonly set: readonly string[];
  readonly name?: string;
  readonly queue: boolean;
  readonly runAll: boolean;
  readonly jobs: number;
  readonly force: boolean;
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
  if (args.runAll) {
    if (args.distributed) throw new UserError({ message: '--run-all runs the local queue here; to run experiments on workers, queue them with --distributed' });
    if (args.set.length || args.name) throw new UserError({ message: '--run-all runs what is queued; it takes no -S or --name' });
    return runQueue(io, ws, store, args.jobs);
  }
  const overrides = args.set.map(parseOverride);
  validateOverrides(overrides, ws.pipeline.params);
  const grid = expandGrid(overrides);
  if (args.name) ExpStore.checkName(args.name);
  const taken = new Set(store.list().map((r) => r.name));
  const names = grid.map((_, i) => {
    const n = args.name ? (grid.length > 1 ? `${args.name}-${i + 1}` : args.name) : store.newName(taken);
    if (taken.has(n)) throw new UserError({ message: `an experiment named '${n}' already exists`, hint: `choose another --name, or 'lockstep exp remove ${n}'` });
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
  }));
  if (args.distributed) {
    if (args.queue) throw new UserError({ message: '--queue keeps experiments in this repository; --distributed puts them on the shared queue: choose one' });
    const { submitExperiments } = await import('../queue/submitter.js');
    return submitExperiments(io, ws, store, { records, targets: [], remote: args.remote, wait: !args.noWait });
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
  return runInWorkspace(io, ws, store, records[0]!, args.force);
}

function describe(a: Assignment): string {
  const d = describeAssignment(a);
  return d ? `: ${d}` : '';
}

/** One experiment in the user's workspace, as `dvc exp run` does: params edited, pipeline reproduced. */
async function runInWorkspace(io: Io, ws: Workspace, store: ExpStore, rec: ExpRecord, force: boolean): Promise<number> {
  applyAssignment(ws.root, rec.overrides);
  io.out(`running experiment ${rec.name}${describe(rec.overrides)}`);
  const t0 = Date.now();
  const child = spawn(process.execPath, [lockstepBin(), 'repro', ...(force ? ['-f'] : [])], { cwd: ws.root, stdio: ['ignore', 'inherit', 'inherit'] });
  const code = await exitOf(child);
  const done = finished(rec, ws.root, code, t0, '');
  store.save(done);
  io.out(`experiment ${rec.name}: ${done.status} in ${formatDuration(done.durationMs!)}`);
  return code === 0 ? 0 : 1;
}

/**
 * Queued experiments, N at a time, each in its own temporary copy of the
 * repository sharing this repository's cache, so the workspace is never touched.
 */
async function runQueue(io: Io, ws: Workspace, store: ExpStore, jobs: number): Promise<number> {
  const queued = store.list().filter((r) => r.status === 'queued');
  if (queued.length === 0) {
    io.out('nothing queued');
    return 0;
  }
  io.out(`running ${queued.length} queued experiment${queued.length === 1 ? '' : 's'}, ${jobs} at a time`);
  const running = new Map<string, { child: ChildProcess; dir: string; rec: ExpRecord }>();
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
  let failures = 0;
  try {
    const pending = [...queued];
    const inFlight = new Set<Promise<void>>();
    while ((pending.length || inFlight.size) && !interrupted) {
      while (pending.length && inFlight.size < jobs && !interrupted) {
        const rec = pending.shift()!;
        const p: Promise<void> = runOne(io, ws, store, rec, running).then((ok) => {
          if (!ok) failures++;
        }).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      if (inFlight.size) await Promise.race(inFlight);
    }
    await Promise.allSettled(inFlight);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (interrupted) {
    io.err('interrupted: unfinished experiments stay queued');
    return 130;
  }
  io.out(`${queued.length - failures} succeeded, ${failures} failed`);
  return failures ? 1 : 0;
}

async function runOne(
  io: Io,
  ws: Workspace,
  store: ExpStore,
  rec: ExpRecord,
  running: Map<string, { child: ChildProcess; dir: string; rec: ExpRecord }>,
): Promise<boolean> {
  const t0 = Date.now();
  const dir = makeTempWorkspace(ws);
  store.save({ ...rec, status: 'running' });
  io.out(`▶ ${rec.name}: running${describe(rec.overrides)}`);
  const logFile = store.logFile(rec.name);
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const log = fs.openSync(logFile, 'w');
  try {
    applyAssignment(dir, rec.overrides);
    // One cache for every experiment: what one computed, the others (and `exp apply`) restore.
    const code = await reproIn(dir, ['repro'], log, { LOCKSTEP_CACHE_DIR: path.join(ws.stateDir, 'cache') }, (child) => running.set(rec.name, { child, dir, rec }));
    running.delete(rec.name);
    if (code === 130 || code === 143) {
      store.save({ ...rec, status: 'queued' }); // interrupted: back in the queue, as it was
      return false;
    }
    const done = finished(rec, dir, code, t0, `; see ${path.relative(ws.root, logFile)}`);
    store.save(done);
    io.out(`${code === 0 ? '✓' : '✗'} ${rec.name}: ${done.status} in ${formatDuration(done.durationMs!)}${code === 0 ? '' : ` (log: ${path.relative(ws.root, logFile)})`}`);
    return code === 0;
  } catch (e) {
    store.save({ ...rec, status: 'failed', error: (e as Error).message, finishedAt: new Date().toISOString() });
    io.out(`✗ ${rec.name}: failed: ${(e as Error).message}`);
    return false;
  } finally {
    fs.closeSync(log);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Run the lockstep CLI (`repro …`) in an experiment's temporary workspace,
 * its output going to `logFd`; its own process group, so it can be ended
 * with every stage it started. Resolves to its exit code. Shared by
 * `--run-all` and `lockstep worker`.
 */
export function reproIn(dir: string, args: readonly string[], logFd: number, env: Record<string, string>, started?: (child: ChildProcess) => void): Promise<number> {
  const child = spawn(process.execPath, [lockstepBin(), ...args], { cwd: dir, detached: true, stdio: ['ignore', logFd, logFd], env: { ...process.env, ...env } });
  started?.(child);
  return exitOf(child);
}

/** The record of a run that ended with `code`, with what it left in `dir`. */
function finished(rec: ExpRecord, dir: string, code: number, t0: number, errorDetail: string): ExpRecord {
  return {
    ...rec,
    ...collectResult(dir),
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

