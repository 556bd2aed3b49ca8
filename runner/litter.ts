import fs from 'node:fs';
import path from 'node:path';
import { pidExists } from './owner.js';
import type { Workspace } from './workspace.js';

/**
 * Temporary files beside outputs. Checkout writes `<out>.lockstep-tmp-<pid>-<random>`
 * and renames it into place; a process killed in between (kill -9, power
 * loss) leaves it behind. The owner's pid is in the name so the next run can
 * tell litter from a file another live process is still writing.
 */
const MARK = '.lockstep-tmp-';

/** The suffix of a fresh temp name owned by this process. */
export function tempSuffix(): string {
  return `${MARK}${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Whether a file or folder name is one of our temp names (never an output, never part of one). */
export function isTempName(name: string): boolean {
  return name.includes(MARK);
}

function ownerPid(name: string): number | undefined {
  const m = /\.lockstep-tmp-(\d+)/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * Litter: its owner is gone, or it predates `since` (the start of the current
 * run, which holds the repository lock, so no other lockstep is writing
 * outputs; a live pid then belongs to an unrelated process that reused it).
 * Our own temp files never are.
 */
export function isStaleTemp(abs: string, since: number = performance.timeOrigin): boolean {
  const pid = ownerPid(path.basename(abs));
  if (pid === process.pid) return false;
  if (pid === undefined || !pidExists(pid)) return true;
  try {
    return fs.lstatSync(abs).mtimeMs < since;
  } catch {
    return false;
  }
}

/**
 * Remove stale temp files and folders: those in the folders that hold the
 * declared outputs (where checkout puts them), plus any the tree walk found
 * inside directory outputs (`found`). Returns what was removed, repo-relative.
 */
export function sweepTemps(root: string, outPaths: Iterable<string>, since: number, found: Iterable<string> = []): string[] {
  const candidates = new Set<string>(found);
  const parents = new Set<string>();
  for (const p of outPaths) parents.add(path.dirname(path.join(root, p)));
  for (const dir of parents) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue; // not made yet
    }
    for (const n of names) if (isTempName(n)) candidates.add(path.join(dir, n));
  }
  const removed: string[] = [];
  for (const abs of candidates) {
    if (!isStaleTemp(abs, since)) continue;
    try {
      fs.rmSync(abs, { recursive: true, force: true });
      removed.push(path.relative(root, abs));
    } catch {
      // unremovable (permissions): it is ignored by hashing anyway, and the next run tries again
    }
  }
  return removed.sort();
}

/**
 * Sweep a workspace at the start (or end) of a command that holds the
 * repository lock: temp files beside declared outputs, those the tree walk
 * met inside directory outputs, and the cache's own temp files whose owner is
 * gone (only by pid there: a shared cache may be written by live runs of
 * other repositories or experiments at any time).
 */
export function sweepWorkspace(ws: Workspace, cacheDir?: string): string[] {
  const outs: string[] = [];
  for (const s of ws.pipeline.stages.values()) for (const o of s.outs) outs.push(o.path);
  const removed = sweepTemps(ws.root, outs, performance.timeOrigin, ws.hasher.temps.splice(0));
  if (cacheDir) sweepCacheTemp(cacheDir);
  // Module stages' context files of a run that was killed.
  sweepDeadOwners(path.join(ws.stateDir, 'tmp'), /^ctx-(\d+)-/);
  return removed;
}

/** `<cache>/tmp/<pid>-<random>`: files left by a writer that no longer exists. */
function sweepCacheTemp(cacheDir: string): void {
  sweepDeadOwners(path.join(cacheDir, 'tmp'), /^(\d+)-/);
}

/** Entries of `dir` whose name carries (as `owner`'s first group) the pid of a process that no longer exists. */
function sweepDeadOwners(dir: string, owner: RegExp): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const pid = Number(owner.exec(n)?.[1]);
    if (pid && pid !== process.pid && !pidExists(pid)) fs.rmSync(path.join(dir, n), { recursive: true, force: true });
  }
}
