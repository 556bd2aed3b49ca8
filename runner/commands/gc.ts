import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openWorkspace, STATE_DIR, findRoot } from '../workspace.js';
import { RepoLock, GC_LOCK } from '../repo-lock.js';
import { ownerDead } from '../owner.js';
import { liveRun, requeueAndReport } from '../exp/reap.js';
import { openLocalCache, type LocalCache } from '../cache/open.js';
import { objectsOf } from '../cache/checkout.js';
import { Lockfile, LOCK_FILE, type LockEntry } from '../lockfile.js';
import { ExpStore, type ExpRecord } from '../exp/store.js';
import { gitFilesNamed, gitRevisions, gitShow } from '../git.js';
import { UserError } from '../errors.js';
import { findPointers, parsePointer, type PointerFile } from '../tracked.js';
import { spawnSync } from 'node:child_process';
import { lookupMd5 } from '../cache/dvc-remote.js';
import type { Io } from '../cli-io.js';

export interface GcScope {
  readonly branches: boolean;
  readonly tags: boolean;
  readonly commits: boolean;
  /** Keep what recorded experiments produced, so `exp apply` still works (default). */
  readonly experiments: boolean;
}

/**
 * Experiments running right now (in temporary copies sharing this cache).
 * What they will record is not known yet, so while they run gc keeps, besides
 * what is recorded: every object that entered the cache since the oldest of
 * them started, every object a run-cache entry names (a running `repro` may
 * restore it) and what their copies' pipeline.lock already records. An object
 * re-used rather than re-stored can still go; the runner puts it back from its
 * copy before it records the experiment (see exp/run.ts).
 */
export interface RunningWork {
  readonly since: number;
  readonly entries: LockEntry[];
}

function runningWork(store: ExpStore): RunningWork | undefined {
  const live: ExpRecord[] = store.list().filter((r) => liveRun(store, r));
  if (!live.length) return undefined;
  const entries: LockEntry[] = [];
  for (const r of live) {
    try {
      entries.push(...Lockfile.parseText(fs.readFileSync(path.join(r.lease!.dir, LOCK_FILE), 'utf8'), LOCK_FILE).values());
    } catch {
      // not written yet, or mid-copy: the time rule covers what it will name
    }
  }
  // A second of slack: file times may be coarser than the clock the lease was stamped with.
  return { since: Math.min(...live.map((r) => Date.parse(r.lease!.since))) - 1000, entries };
}

export interface GcPlan {
  readonly objects: { hash: string; size: number }[];
  readonly runEntries: string[];
  readonly kept: number;
}

/** Every lock entry that still matters: the workspace's, and per the scope, git's and the experiments'. */
function liveEntries(root: string, stateDir: string, workspaceLock: Lockfile, scope: GcScope, cacheDir: string): LockEntry[] {
  const entries: LockEntry[] = [...workspaceLock.stages.values()];
  // Data tracked by .dvc pointers ('lockstep add'), in the workspace and at the revisions in scope, counts as outputs.
  // md5 pointers (a DVC repository's) count for what was fetched for them from a DVC remote.
  const hashOf = (o: PointerFile['outs'][number]) => (o.algo === 'xxh64' ? o.hash : lookupMd5(cacheDir, o.hash));
  const pointed = (files: PointerFile[]): LockEntry => ({
    cmd: '',
    deps: [],
    params: {},
    outs: files.flatMap((p) => p.outs.flatMap((o) => (hashOf(o) ? [{ path: o.path, hash: hashOf(o)!, size: o.size ?? 0 }] : []))),
  });
  entries.push(pointed(findPointers(root)));
  const revs = new Set<string>();
  if (scope.branches) for (const r of gitRevisions(root, 'branches')) revs.add(r);
  if (scope.tags) for (const r of gitRevisions(root, 'tags')) revs.add(r);
  if (scope.commits) for (const r of gitRevisions(root, 'commits')) revs.add(r);
  for (const rev of revs) {
    const ls = spawnSync('git', ['ls-tree', '-r', '--name-only', rev], { cwd: root, encoding: 'utf8', maxBuffer: 256 << 20 });
    const pointerFiles = ls.status === 0 ? ls.stdout.split('\n').filter((f) => f.endsWith('.dvc')) : [];
    const ptrs: PointerFile[] = [];
    for (const f of pointerFiles) {
      try {
        ptrs.push(parsePointer(f, gitShow(root, rev, f) ?? ''));
      } catch {
        // a pointer that cannot be read names nothing to keep
      }
    }
    entries.push(pointed(ptrs));
    // Every pipeline.lock of that commit: nested pipelines keep theirs beside their file (only hashes matter here).
    for (const file of gitFilesNamed(root, rev, LOCK_FILE)) {
      const text = gitShow(root, rev, file);
      if (text === undefined) continue;
      try {
        entries.push(...Lockfile.parseText(text, `${rev.slice(0, 8)}:${file}`).values());
      } catch {
        throw new UserError({ message: `${file} at commit ${rev.slice(0, 8)} cannot be read, so gc cannot tell what it needs`, hint: 'nothing was removed; gc without that --all-… flag, or fix the commit' });
      }
    }
  }
  if (scope.experiments) for (const rec of new ExpStore(stateDir).list()) entries.push(...Object.values(rec.lock ?? {}));
  return entries;
}

/** What gc would remove: objects no live lock entry needs, and run-cache entries left without their objects. */
export async function planGc(root: string, stateDir: string, lock: Lockfile, cache: LocalCache, scope: GcScope, running?: RunningWork): Promise<GcPlan> {
  const keep = new Set<string>();
  const keepOuts = async (outs: LockEntry['outs']) => {
    for (const o of outs) for (const h of await objectsOf(cache.store, o)) keep.add(h);
  };
  for (const e of liveEntries(root, stateDir, lock, scope, cache.settings.dir)) await keepOuts(e.outs);
  if (running) {
    for (const e of running.entries) await keepOuts(e.outs);
    for (const fp of cache.runs.list()) {
      const r = cache.runs.lookup(fp);
      if (r.kind === 'hit') await keepOuts(r.entry.outs);
    }
  }
  const recent = (h: string) => {
    try {
      return fs.statSync(cache.store.pathOf(h)).ctimeMs >= running!.since;
    } catch {
      return false;
    }
  };
  const objects = cache.store
    .list()
    .filter((h) => !keep.has(h) && !(running && recent(h)))
    .map((hash) => ({ hash, size: cache.store.size(hash) }));
  const gone = new Set(objects.map((o) => o.hash));
  const runEntries: string[] = [];
  for (const fp of cache.runs.list()) {
    const r = cache.runs.lookup(fp);
    if (r.kind !== 'hit') {
      runEntries.push(fp); // unreadable or untrusted: of no use to anyone
      continue;
    }
    const needs = (await Promise.all(r.entry.outs.map((o) => objectsOf(cache.store, o)))).flat();
    if (needs.some((h) => gone.has(h) || !cache.store.has(h))) runEntries.push(fp);
  }
  return { objects, runEntries, kept: keep.size };
}

function mb(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MB` : `${(bytes / 1024).toFixed(1)} KB`;
}

export async function gcCommand(io: Io, args: GcScope & { force: boolean; json: boolean }): Promise<number> {
  const stateDir = path.join(findRoot(io.cwd), STATE_DIR);
  const repoLock = await RepoLock.acquire(stateDir, 'gc', 0);
  let gcLock: RepoLock | undefined;
  try {
    // An experiment runner holds this only while it records a finished run (a moment).
    gcLock = await RepoLock.acquire(stateDir, 'gc', 60_000, GC_LOCK);
    const ws = openWorkspace(io.cwd, { checkDeps: false });
    const cache = openLocalCache(ws.stateDir);
    const store = new ExpStore(ws.stateDir);
    requeueAndReport(io, store);
    const running = runningWork(store);
    const plan = await planGc(ws.root, ws.stateDir, ws.lock, cache, args, running);
    const bytes = plan.objects.reduce((s, o) => s + o.size, 0);
    if (args.force) {
      for (const fp of plan.runEntries) cache.runs.remove(fp);
      for (const o of plan.objects) cache.store.remove(o.hash);
      cache.store.clearTemp((pid) => !ownerDead({ pid, host: os.hostname() }));
    }
    const n = running ? store.list().filter((r) => liveRun(store, r)).length : 0;
    if (running && !args.json) {
      io.err(`${n} experiment${n === 1 ? ' is' : 's are'} running: kept what ${n === 1 ? 'it' : 'they'} may need; run gc again once ${n === 1 ? 'it has' : 'they have'} finished to remove the rest`);
    }
    if (args.json) {
      io.out(JSON.stringify({ removed: args.force, objects: plan.objects.length, bytes, runEntries: plan.runEntries.length, kept: plan.kept, runningExperiments: n }, null, 2));
      return 0;
    }
    const what = `${plan.objects.length} object${plan.objects.length === 1 ? '' : 's'} (${mb(bytes)}) and ${plan.runEntries.length} run-cache entr${plan.runEntries.length === 1 ? 'y' : 'ies'}`;
    if (args.force) io.out(`removed ${what}; kept ${plan.kept} objects still in use`);
    else {
      for (const o of plan.objects.slice(0, 20)) io.out(`  ${o.hash}  ${mb(o.size)}`);
      if (plan.objects.length > 20) io.out(`  … and ${plan.objects.length - 20} more`);
      io.out(`would remove ${what}; ${plan.kept} objects are still in use. Run 'lockstep gc --force' to remove them.`);
    }
    return 0;
  } finally {
    gcLock?.release();
    repoLock.release();
  }
}
