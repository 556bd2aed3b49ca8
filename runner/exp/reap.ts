import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ownerDead } from '../owner.js';
import type { Lease } from './claim.js';
import { ExpStore, type ExpRecord } from './store.js';
import type { Io } from '../cli-io.js';

/** Temporary copies are made under this prefix, so nothing else is ever removed by mistake. */
const TEMP_COPY_PREFIX = 'lockstep-exp-';

/** A fresh temporary copy's path (made by the runner once its claim is recorded). */
export function tempCopyPath(name: string, token: string): string {
  return path.join(os.tmpdir(), `${TEMP_COPY_PREFIX}${name}-${token}`);
}

/** Running, and its runner is alive: somebody will record its result. */
export function liveRun(store: ExpStore, rec: ExpRecord): boolean {
  return rec.status === 'running' && !!rec.lease && store.claims.held(rec.name, rec.lease);
}

/**
 * Experiments left "running" by a runner that died (kill -9, a crash, a
 * reboot) go back to the queue, and what that run left is removed: its
 * `repro` and stage processes, still working in the temporary copy, and the
 * copy itself. Each one is claimed first, so two commands doing this at once,
 * or a `--run-all` starting meanwhile, never act on the same experiment.
 * Called by every `exp` command and by `gc`; returns the names requeued.
 */
function requeueDeadRuns(store: ExpStore, recs: readonly ExpRecord[]): string[] {
  const out: string[] = [];
  for (const rec of recs) {
    // A distributed experiment runs on a worker machine: the queue (BullMQ's stalled-job check) owns its liveness.
    if (rec.status !== 'running' || rec.distributed || liveRun(store, rec)) continue;
    const mine = store.claims.tryClaim(rec.name, '');
    if (!mine) continue; // someone alive is dealing with it right now
    try {
      const cur = store.read(rec.name);
      if (!cur || cur.status !== 'running' || cur.distributed || liveRun(store, cur)) continue;
      if (cur.lease) removeLeftovers(cur.lease);
      store.save(requeued(cur));
      out.push(cur.name);
    } finally {
      store.claims.release(rec.name, mine);
    }
  }
  return out;
}

/** The record as it was queued: nothing of the run that did not finish. */
export function requeued(rec: ExpRecord): ExpRecord {
  return {
    name: rec.name,
    status: 'queued',
    createdAt: rec.createdAt,
    ...(rec.baseRev ? { baseRev: rec.baseRev } : {}),
    overrides: rec.overrides,
    ...(rec.targets ? { targets: rec.targets } : {}),
  };
}

/** End what a dead runner left working in its temporary copy, then remove the copy. */
function removeLeftovers(lease: Lease): void {
  const dir = lease.dir;
  const ours = !!dir && path.basename(dir).startsWith(TEMP_COPY_PREFIX) && path.isAbsolute(dir);
  const victims = new Set<number>();
  // The `repro` child was started in its own process group; its stages each in theirs, all with their cwd in the copy.
  if (lease.child && !ownerDead(lease.child)) victims.add(-lease.child.pid);
  if (ours) for (const pid of processesIn(dir)) victims.add(pid);
  for (const pid of victims) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  if (victims.size) waitGone([...victims].map(Math.abs), 2000);
  if (ours) fs.rmSync(dir, { recursive: true, force: true });
}

/** Processes (Linux) whose working directory is `dir` or inside it. */
function processesIn(dir: string): number[] {
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const p of pids) {
    try {
      const cwd = fs.readlinkSync(`/proc/${p}/cwd`);
      if (cwd === dir || cwd.startsWith(dir + '/')) out.push(Number(p));
    } catch {
      // not ours to inspect, or gone
    }
  }
  return out;
}

function waitGone(pids: number[], ms: number): void {
  const deadline = Date.now() + ms;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (Date.now() < deadline) {
    const left = pids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return !/^\d+ \(.*\) Z/s.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    });
    if (!left.length) return;
    Atomics.wait(pause, 0, 0, 20);
  }
}

/** requeueDeadRuns, saying on stderr what it put back; whether it changed anything (`recs`: the records, if already read). */
export function requeueAndReport(io: Io, store: ExpStore, recs: readonly ExpRecord[] = store.list()): boolean {
  const names = requeueDeadRuns(store, recs);
  for (const n of names) io.err(`requeued ${n}: the runner that was running it is gone`);
  return names.length > 0;
}

/** The experiment store, after putting back in the queue what a dead runner left "running": every exp command opens it so. */
export function openStore(io: Io, stateDir: string): ExpStore {
  const store = new ExpStore(stateDir);
  requeueAndReport(io, store);
  return store;
}
