import path from 'node:path';
import { openWorkspace, saveCaches, STATE_DIR, findRoot, type Workspace } from '../workspace.js';
import { RepoLock } from '../repo-lock.js';
import { sweepWorkspace } from '../litter.js';
import { openLocalCache, type LocalCache } from '../cache/open.js';
import { checkoutOut, missingObjects } from '../cache/checkout.js';
import { CorruptObject, EXIT_DAMAGED_CACHE } from '../cache/object-store.js';
import type { LockedPath } from '../lockfile.js';
import { findPointers, type PointerFile } from '../tracked.js';
import { lookupMd5 } from '../cache/dvc-remote.js';
import { isWithin } from '../paths.js';
import type { Io } from '../cli-io.js';

/** `damaged`: an object it needs failed verification and was quarantined; the output was left as it was. */
export type CheckoutOutcome = 'unchanged' | 'restored' | 'missing' | 'refused' | 'damaged';

export interface CheckoutItem {
  readonly stage: string;
  readonly path: string;
  readonly outcome: CheckoutOutcome;
  readonly detail?: string;
}

/**
 * The cached outputs recorded in pipeline.lock for the selected stages (uncached
 * ones live in git), and the data tracked by `.dvc` pointer files (their `stage`
 * is the pointer file). A target names a stage, an output, a pointer file or
 * the data it tracks.
 */
/** The pointer files the targets name (all when there are none), and the targets left for stages. */
export function selectPointers(ws: Workspace, targets: readonly string[]): { pointers: PointerFile[]; stageTargets: string[] } {
  const all = findPointers(ws.root);
  if (!targets.length) return { pointers: all, stageTargets: [] };
  const chosen = new Set<PointerFile>();
  const stageTargets = targets.filter((t) => {
    const rel = path.relative(ws.root, path.resolve(t)).split(path.sep).join('/');
    const p = all.find((f) => f.file === rel || f.outs.some((o) => isWithin(rel, o.path) || isWithin(o.path, rel)));
    if (p) chosen.add(p);
    return !p;
  });
  return { pointers: all.filter((p) => chosen.has(p)), stageTargets };
}

export function lockedOuts(ws: Workspace, targets: readonly string[], withPointers = true, cacheDir?: string): { stage: string; out: LockedPath }[] {
  const { pointers, stageTargets } = withPointers ? selectPointers(ws, targets) : { pointers: [], stageTargets: [...targets] };
  const names = targets.length ? new Set(ws.graph.resolveTargets(stageTargets, ws.root)) : undefined;
  const list: { stage: string; out: LockedPath }[] = [];
  for (const p of pointers) {
    for (const o of p.outs) {
      // An md5 pointer (a DVC repository's) counts once its data was fetched into our cache from a DVC remote.
      const hash = o.algo === 'xxh64' ? o.hash : cacheDir ? lookupMd5(cacheDir, o.hash) : undefined;
      if (hash) list.push({ stage: p.file, out: { path: o.path, hash, size: o.size ?? 0, ...(o.nfiles !== undefined ? { nfiles: o.nfiles } : {}) } });
    }
  }
  for (const name of ws.graph.order) {
    if (names && !names.has(name)) continue;
    const entry = ws.lock.get(name);
    const stage = ws.pipeline.stages.get(name)!;
    if (!entry) continue;
    for (const out of entry.outs) {
      const decl = stage.outs.find((o) => o.path === out.path);
      if (decl?.cache) list.push({ stage: name, out });
    }
  }
  return list;
}

/**
 * Put outputs back to what pipeline.lock records. An output whose current
 * content is not in the cache holds work that would be lost: it is left alone
 * unless `force`.
 */
export async function checkoutOutputs(ws: Workspace, cache: LocalCache, targets: readonly string[], force: boolean, withPointers = true): Promise<CheckoutItem[]> {
  const items: CheckoutItem[] = [];
  for (const { stage, out } of lockedOuts(ws, targets, withPointers, cache.settings.dir)) {
    const abs = path.join(ws.root, out.path);
    const now = await ws.hasher.hashPath(abs);
    if (now.kind !== 'missing' && now.hash === out.hash) {
      items.push({ stage, path: out.path, outcome: 'unchanged' });
      continue;
    }
    const seen = cache.store.quarantined.length;
    const missing = await missingObjects(cache.store, out);
    const damaged = cache.store.quarantined.slice(seen)[0];
    if (damaged) {
      items.push({ stage, path: out.path, outcome: 'damaged', detail: new CorruptObject(damaged).message });
      continue;
    }
    if (missing.length) {
      items.push({ stage, path: out.path, outcome: 'missing', detail: `${missing.length} object${missing.length === 1 ? '' : 's'} not in the cache` });
      continue;
    }
    if (!force && now.kind !== 'missing' && !(await contentIsCached(cache, now))) {
      items.push({ stage, path: out.path, outcome: 'refused', detail: 'it has changes that are not in the cache' });
      continue;
    }
    try {
      await checkoutOut(cache.store, ws.root, out, cache.settings.link);
    } catch (e) {
      if (!(e instanceof CorruptObject)) throw e;
      items.push({ stage, path: out.path, outcome: 'damaged', detail: e.message });
      continue;
    }
    items.push({ stage, path: out.path, outcome: 'restored' });
  }
  return items;
}

async function contentIsCached(cache: LocalCache, state: { kind: 'file' | 'dir'; hash: string; manifest?: readonly { hash: string }[] }): Promise<boolean> {
  if (state.kind === 'file') return cache.store.has(state.hash);
  return (state.manifest ?? []).every((e) => cache.store.has(e.hash));
}

export async function checkoutCommand(io: Io, args: { targets: string[]; force: boolean; json: boolean }): Promise<number> {
  const lock = await RepoLock.acquire(path.join(findRoot(io.cwd), STATE_DIR), 'checkout', 0);
  try {
    const ws = openWorkspace(io.cwd, { checkDeps: false });
    const cache = openLocalCache(ws.stateDir);
    sweepWorkspace(ws, cache.settings.dir);
    const items = await checkoutOutputs(ws, cache, args.targets, args.force);
    sweepWorkspace(ws);
    saveCaches(ws);
    const bad = items.filter((i) => i.outcome === 'missing' || i.outcome === 'refused' || i.outcome === 'damaged');
    if (args.json) {
      io.out(JSON.stringify({ ok: bad.length === 0, outputs: items }, null, 2));
    } else {
      for (const i of items) {
        if (i.outcome === 'restored') io.out(`↺ ${i.path}: restored from the cache`);
        else if (i.outcome === 'missing') io.err(`✗ ${i.path}: ${i.detail}; run ${i.stage.endsWith('.dvc') ? `'lockstep pull ${i.stage}'` : `'lockstep pull' or 'lockstep repro ${i.stage}'`}`);
        else if (i.outcome === 'refused') io.err(`✗ ${i.path}: ${i.detail}; rerun with --force to discard them`);
        else if (i.outcome === 'damaged') io.err(`✗ ${i.path}: not restored: ${i.detail}; 'lockstep repro ${i.stage}' makes it again, 'lockstep cache verify --repair' fetches a good copy`);
      }
      const n = (o: CheckoutOutcome) => items.filter((i) => i.outcome === o).length;
      io.out(`${items.length} output${items.length === 1 ? '' : 's'}: ${n('restored')} restored, ${n('unchanged')} unchanged${n('missing') ? `, ${n('missing')} missing` : ''}${n('refused') ? `, ${n('refused')} kept (local changes)` : ''}${n('damaged') ? `, ${n('damaged')} not restored (damaged cache object)` : ''}`);
    }
    // A damaged cache is not bad input: its own named code (1, like the other outcomes that leave an output behind).
    return items.some((i) => i.outcome === 'damaged') ? EXIT_DAMAGED_CACHE : bad.length ? 1 : 0;
  } finally {
    lock.release();
  }
}
