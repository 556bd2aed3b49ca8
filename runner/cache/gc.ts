import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ownerDead } from '../owner.js';
import { liveRun } from '../exp/reap.js';
import { ExpStore, type ExpRecord } from '../exp/store.js';
import { Lockfile, LOCK_FILE, type LockEntry } from '../lockfile.js';
import { gitFilesNamed, gitRevisions, gitShow } from '../git.js';
import { UserError } from '../errors.js';
import { findPointers, parsePointer, type PointerFile } from '../tracked.js';
import { objectsOf } from './checkout.js';
import { lookupMd5 } from './dvc-remote.js';
import type { LocalCache } from './open.js';
import type { Workspace } from '../workspace.js';

/**
 * Garbage collection of the local cache: which objects and run-cache entries
 * nothing in scope needs any more. Gathering what is needed reads git, the
 * locks and the experiments (`gcInventory`); the decision itself is a pure
 * function of that inventory (`planRemoval`), unit-tested on its own.
 */

/** The part of a workspace gc reads: where it is and its pipeline.lock. */
export type GcWorkspace = Pick<Workspace, 'root' | 'stateDir' | 'lock'>;

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

export function runningWork(store: ExpStore): RunningWork | undefined {
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
  return {
    since: Math.min(...live.map((r) => Date.parse(r.lease!.since))) - 1000,
    entries,
  };
}

export interface GcPlan {
  readonly objects: { hash: string; size: number }[];
  readonly runEntries: string[];
  readonly kept: number;
}

/** Every lock entry that still matters: the workspace's, and per the scope, git's and the experiments'. */
function liveEntries(ws: GcWorkspace, scope: GcScope, cacheDir: string): LockEntry[] {
  const { root, stateDir } = ws;
  const entries: LockEntry[] = [...ws.lock.stages.values()];
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
    const ls = spawnSync('git', ['ls-tree', '-r', '--name-only', rev], {
      cwd: root,
      encoding: 'utf8',
      maxBuffer: 256 << 20,
    });
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
        throw new UserError({
          message: `${file} at commit ${rev.slice(0, 8)} cannot be read, so gc cannot tell what it needs`,
          hint: 'nothing was removed; gc without that --all-… flag, or fix the commit',
        });
      }
    }
  }
  if (scope.experiments) for (const rec of new ExpStore(stateDir).list()) entries.push(...Object.values(rec.lock ?? {}));
  return entries;
}

export interface GcPlan {
  readonly objects: { hash: string; size: number }[];
  readonly runEntries: string[];
  readonly kept: number;
}

/** What the cache holds and what is still needed: everything gc decides on, gathered once. */
export interface GcInventory {
  /** Every object in the store; `recent` when it entered the cache since running experiments started. */
  readonly objects: readonly { hash: string; size: number; recent?: boolean }[];
  /** Objects a live lock entry (or running work) needs. */
  readonly keep: ReadonlySet<string>;
  /** Run-cache entries with the objects each names; `needs` is absent for one that cannot be read or is not trusted. */
  readonly runEntries: readonly {
    fingerprint: string;
    needs?: readonly string[];
  }[];
}

/**
 * The decision, free of I/O: remove every object nothing keeps (except recent
 * ones while experiments run), and every run-cache entry that is unusable or
 * would be left naming an object that is gone or was never there: a run-cache
 * hit must restore whole outputs.
 */
export function planRemoval(inv: GcInventory): GcPlan {
  const objects = inv.objects.filter((o) => !inv.keep.has(o.hash) && !o.recent).map(({ hash, size }) => ({ hash, size }));
  const gone = new Set(objects.map((o) => o.hash));
  const stored = new Set(inv.objects.map((o) => o.hash));
  const runEntries = inv.runEntries.filter((r) => !r.needs || r.needs.some((h) => gone.has(h) || !stored.has(h))).map((r) => r.fingerprint);
  return { objects, runEntries, kept: inv.keep.size };
}

/** Reads the cache and every lock entry in scope into an inventory (see `planRemoval` for the decision). */
async function gcInventory(ws: GcWorkspace, cache: LocalCache, scope: GcScope, running?: RunningWork): Promise<GcInventory> {
  const keep = new Set<string>();
  const keepOuts = async (outs: LockEntry['outs']) => {
    for (const o of outs) for (const h of await objectsOf(cache.store, o)) keep.add(h);
  };
  for (const e of liveEntries(ws, scope, cache.settings.dir)) await keepOuts(e.outs);
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
  const objects = cache.store.list().map((hash) => ({
    hash,
    size: cache.store.size(hash),
    ...(running && !keep.has(hash) && recent(hash) ? { recent: true } : {}),
  }));
  const runEntries: { fingerprint: string; needs?: string[] }[] = [];
  for (const fp of cache.runs.list()) {
    const r = cache.runs.lookup(fp);
    runEntries.push(
      r.kind === 'hit'
        ? {
            fingerprint: fp,
            needs: (await Promise.all(r.entry.outs.map((o) => objectsOf(cache.store, o)))).flat(),
          }
        : { fingerprint: fp },
    );
  }
  return { objects, keep, runEntries };
}

/** What gc would remove: objects no live lock entry needs, and run-cache entries left without their objects. */
export async function planGc(ws: GcWorkspace, cache: LocalCache, scope: GcScope, running?: RunningWork): Promise<GcPlan> {
  return planRemoval(await gcInventory(ws, cache, scope, running));
}

/** Carry a plan out: run-cache entries first (so none is ever left naming a removed object), then objects, then abandoned temp files. */
export function removePlanned(cache: LocalCache, plan: GcPlan): void {
  for (const fp of plan.runEntries) cache.runs.remove(fp);
  for (const o of plan.objects) cache.store.remove(o.hash);
  cache.store.clearTemp((pid) => !ownerDead({ pid, host: os.hostname() }));
}
