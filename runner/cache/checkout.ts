import fs from 'node:fs';
import path from 'node:path';
import type { LockedPath } from '../lockfile.js';
import { isDirHash } from './layout.js';
import { isTempName, tempSuffix } from '../litter.js';
import { CorruptObject, type LinkType, type ObjectStore } from './object-store.js';
import { guardFor } from '../containment.js';

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
