import fs from 'node:fs';
import path from 'node:path';
import type { LockedPath } from '../lockfile.js';
import { isDirHash } from './layout.js';
import type { LinkType, ObjectStore } from './object-store.js';
import { guardFor } from '../containment.js';

/**
 * The objects an output needs that the store lacks. For a directory whose
 * manifest is absent that is just the manifest: its files are known only once
 * it arrives.
 */
export async function missingObjects(store: ObjectStore, out: Pick<LockedPath, 'hash'>): Promise<string[]> {
  if (!store.has(out.hash)) return [out.hash];
  if (!isDirHash(out.hash)) return [];
  const entries = (await store.readManifest(out.hash))!;
  return [...new Set(entries.filter((e) => !store.has(e.hash)).map((e) => e.hash))];
}

/** Every object an output consists of (it must be complete in the store). */
export async function objectsOf(store: ObjectStore, out: Pick<LockedPath, 'hash'>): Promise<string[]> {
  if (!isDirHash(out.hash)) return [out.hash];
  const entries = await store.readManifest(out.hash);
  return entries ? [out.hash, ...entries.map((e) => e.hash)] : [out.hash];
}

/** Materialise one object at `dest` without ever exposing a half-written file. */
function placeFile(store: ObjectStore, hash: string, dest: string, link: LinkType): void {
  const tmp = `${dest}.lockstep-tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const src = store.pathOf(hash);
  try {
    if (link === 'hardlink') {
      try {
        fs.linkSync(src, tmp);
      } catch {
        fs.copyFileSync(src, tmp);
        fs.chmodSync(tmp, 0o644);
      }
    } else {
      fs.copyFileSync(src, tmp, link === 'reflink' ? fs.constants.COPYFILE_FICLONE : 0);
      // Copies are the user's to edit; only the cache's own objects stay read-only.
      fs.chmodSync(tmp, 0o644);
    }
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
    placeFile(store, out.hash, dest, link);
    return;
  }
  const entries = (await store.readManifest(out.hash))!;
  const staging = `${dest}.lockstep-tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
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
      placeFile(store, e.hash, file, link);
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
    for (const name of fs.readdirSync(abs)) unshareLinks(path.join(abs, name));
  } else if (st.isFile() && st.nlink > 1) {
    const tmp = `${abs}.lockstep-tmp-${process.pid}`;
    fs.copyFileSync(abs, tmp);
    fs.chmodSync(tmp, 0o644);
    fs.renameSync(tmp, abs);
  }
}
