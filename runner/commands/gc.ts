import path from 'node:path';
import { openWorkspace, STATE_DIR, findRoot } from '../workspace.js';
import { RepoLock } from '../repo-lock.js';
import { openLocalCache, type LocalCache } from '../cache/open.js';
import { objectsOf } from '../cache/checkout.js';
import { Lockfile, LOCK_FILE, type LockEntry } from '../lockfile.js';
import { ExpStore } from '../exp/store.js';
import { gitRevisions, gitShow } from '../git.js';
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
    const text = gitShow(root, rev, LOCK_FILE);
    if (text === undefined) continue;
    try {
      entries.push(...Lockfile.parseText(text, `${rev.slice(0, 8)}:${LOCK_FILE}`).values());
    } catch {
      throw new UserError({ message: `${LOCK_FILE} at commit ${rev.slice(0, 8)} cannot be read, so gc cannot tell what it needs`, hint: 'nothing was removed; gc without that --all-… flag, or fix the commit' });
    }
  }
  if (scope.experiments) for (const rec of new ExpStore(stateDir).list()) entries.push(...Object.values(rec.lock ?? {}));
  return entries;
}

/** What gc would remove: objects no live lock entry needs, and run-cache entries left without their objects. */
export async function planGc(root: string, stateDir: string, lock: Lockfile, cache: LocalCache, scope: GcScope): Promise<GcPlan> {
  const keep = new Set<string>();
  for (const e of liveEntries(root, stateDir, lock, scope, cache.settings.dir)) {
    for (const o of e.outs) for (const h of await objectsOf(cache.store, o)) keep.add(h);
  }
  const objects = cache.store.list().filter((h) => !keep.has(h)).map((hash) => ({ hash, size: cache.store.size(hash) }));
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
  const repoLock = await RepoLock.acquire(path.join(findRoot(io.cwd), STATE_DIR), 'gc', 0);
  try {
    const ws = openWorkspace(io.cwd, { checkDeps: false });
    const cache = openLocalCache(ws.stateDir);
    const plan = await planGc(ws.root, ws.stateDir, ws.lock, cache, args);
    const bytes = plan.objects.reduce((s, o) => s + o.size, 0);
    if (args.force) {
      for (const fp of plan.runEntries) cache.runs.remove(fp);
      for (const o of plan.objects) cache.store.remove(o.hash);
      cache.store.clearTemp();
    }
    if (args.json) {
      io.out(JSON.stringify({ removed: args.force, objects: plan.objects.length, bytes, runEntries: plan.runEntries.length, kept: plan.kept }, null, 2));
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
    repoLock.release();
  }
}
