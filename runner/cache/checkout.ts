import fs from 'node:fs';
import path from 'node:path';
import type { LockedPath } from '../lockfile.js';
import { isDirHash } from './layout.js';
import { isTempName, tempSuffix } from '../litter.js';
import { CorruptObject, type LinkType, type ObjectStore } from './object-store.js';
import { guardFor } from '../containment.js';
import { isWithin } from '../paths.js';
import { findPointers, type PointerFile } from '../tracked.js';
import { lookupMd5 } from './dvc-remote.js';
import type { Workspace } from '../workspace.js';
import type { LocalCache } from './open.js';

/**
 * The objects an output needs that the store lacks. For a directory whose
 * manifest is absent that is just the manifest: its files are known only once
 * it arrives. A damaged manifest is quarantined (see `store.quarantined`) and
 * counts as missing, so a good copy can be fetched in its place.
 */
export async function missingObjects(store: ObjectStore, out: Pick<LockedPath, 'hash'>): Promise<string[]> {
  if (!store.has(out.hash)) return [out.hash];
  if (!isDirHash(out.hash)) return [];
  let entries;
  try {
    entries = await store.readManifest(out.hash);
  } catch (e) {
    if (e instanceof CorruptObject) return [out.hash];
    throw e;
  }
  if (!entries) return [out.hash];
  return [...new Set(entries.filter((e) => !store.has(e.hash)).map((e) => e.hash))];
}

/** Every object an output consists of (it must be complete in the store). */
export async function objectsOf(store: ObjectStore, out: Pick<LockedPath, 'hash'>): Promise<string[]> {
  if (!isDirHash(out.hash)) return [out.hash];
  const entries = await store.readManifest(out.hash);
  return entries ? [out.hash, ...entries.map((e) => e.hash)] : [out.hash];
}

/**
 * Materialise one object at `dest` without ever exposing a half-written file,
 * and never a damaged one: the object is verified on the way (CorruptObject).
 */
async function placeFile(store: ObjectStore, hash: string, dest: string, link: LinkType): Promise<void> {
  const tmp = `${dest}${tempSuffix()}`;
  try {
    await store.materialize(hash, tmp, link);
    fs.renameSync(tmp, dest);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Put an output back as the lock records it. A directory is assembled in a
 * fresh sibling folder (which holds no symlinks, so no manifest entry can be
 * steered outside it) and then swapped in.
 */
export async function checkoutOut(store: ObjectStore, root: string, out: LockedPath, link: LinkType): Promise<void> {
  // Right before writing: a folder on the way may have been replaced by a link to elsewhere since the run.
  guardFor(root).assertWritable(out.path, 'output');
  const dest = path.join(root, out.path);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  if (!isDirHash(out.hash)) {
    if (fs.existsSync(dest) && fs.statSync(dest).isDirectory()) fs.rmSync(dest, { recursive: true, force: true });
    await placeFile(store, out.hash, dest, link);
    return;
  }
  const entries = await store.readManifest(out.hash);
  if (!entries) throw new Error(`the manifest ${out.hash} of '${out.path}' is not in the cache`);
  const staging = `${dest}${tempSuffix()}`;
  try {
    fs.mkdirSync(staging);
    const made = new Set([staging]);
    for (const e of entries) {
      const file = path.join(staging, e.relpath);
      const dir = path.dirname(file);
      if (!made.has(dir)) {
        fs.mkdirSync(dir, { recursive: true });
        made.add(dir);
      }
      await placeFile(store, e.hash, file, link);
    }
    fs.rmSync(dest, { recursive: true, force: true });
    fs.renameSync(staging, dest);
  } catch (e) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw e;
  }
}

/**
 * A hard-linked output shares its inode with the cached object; a stage that
 * keeps its outputs (`persist`) and edits them in place would change the
 * object too. Give such files their own copy before the stage runs.
 */
export function unshareLinks(abs: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(abs);
  } catch {
    return;
  }
  if (st.isDirectory()) {
    for (const name of fs.readdirSync(abs)) if (!isTempName(name)) unshareLinks(path.join(abs, name));
  } else if (st.isFile() && st.nlink > 1) {
    const tmp = `${abs}${tempSuffix()}`;
    fs.copyFileSync(abs, tmp);
    fs.chmodSync(tmp, 0o644);
    fs.renameSync(tmp, abs);
  }
}

/** `damaged`: an object it needs failed verification and was quarantined; the output was left as it was. */
export type CheckoutOutcome = 'unchanged' | 'restored' | 'missing' | 'refused' | 'damaged';

export interface CheckoutItem {
  readonly stage: string;
  readonly path: string;
  readonly outcome: CheckoutOutcome;
  readonly detail?: string;
}

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

/**
 * The cached outputs recorded in pipeline.lock for the selected stages (uncached
 * ones live in git), and the data tracked by `.dvc` pointer files (their `stage`
 * is the pointer file). A target names a stage, an output, a pointer file or
 * the data it tracks.
 */
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
export interface CheckoutOptions {
  /** Stages, outputs or pointer files; none = everything the lock and the pointers record. */
  readonly targets: readonly string[];
  /** Overwrite an output even when its current content is not in the cache. */
  readonly force?: boolean;
  /** Include data tracked by `.dvc` pointer files (default true). */
  readonly withPointers?: boolean;
}

export async function checkoutOutputs(
  ws: Workspace,
  cache: LocalCache,
  { targets, force = false, withPointers = true }: CheckoutOptions,
): Promise<CheckoutItem[]> {
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
