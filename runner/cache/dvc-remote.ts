import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { hashFile } from '../hash/xxhash.js';
import { writeFileAtomic } from '../fs-util.js';
import type { ManifestEntry } from '../hash/tree.js';
import type { RemoteStore } from '../remote/types.js';
import { unsafeRelpath } from './manifest.js';
import type { ObjectStore } from './object-store.js';

/**
 * Data a DVC repository tracks by md5 (`data.xml.dvc`), read from the DVC
 * remote it was pushed to: DVC 3 keeps objects under `files/md5/ab/cdef…`,
 * DVC 2 under `ab/cdef…`; a folder is a `.dir` object listing
 * `[{"md5", "relpath"}]`. Every object is checked against its md5, then
 * enters our cache under its xxh64 like any other; `md5/ab/cdef…` in the
 * cache remembers which xxh64 object (or manifest) an md5 stands for.
 */
function indexFile(cacheDir: string, md5: string): string {
  return path.join(cacheDir, 'md5', md5.slice(0, 2), md5.slice(2));
}

/** The xxh64 object (a manifest for a folder) an md5 was fetched as, if it was. */
export function lookupMd5(cacheDir: string, md5: string): string | undefined {
  try {
    return fs.readFileSync(indexFile(cacheDir, md5), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

const md5Of = (file: string) => crypto.createHash('md5').update(fs.readFileSync(file)).digest('hex');

async function downloadVerified(remote: RemoteStore, md5: string, tmp: string): Promise<void> {
  const rest = `${md5.slice(0, 2)}/${md5.slice(2)}`;
  let lastError: unknown;
  for (const key of [`files/md5/${rest}`, rest]) {
    try {
      await remote.download(key, tmp);
      lastError = undefined;
      break;
    } catch (e) {
      if (e instanceof UserError) throw e; // the remote itself is unreachable or refuses us
      lastError = e;
    }
  }
  if (lastError !== undefined) throw new Error(`md5 object ${md5} is not on remote '${remote.name}' (looked for files/md5/${rest} and ${rest})`);
  const got = md5Of(tmp) + (md5.endsWith('.dir') ? '.dir' : '');
  if (got !== md5) throw new Error(`md5 object ${md5} from remote '${remote.name}' has md5 ${got} (corrupted or tampered with); it was not used`);
}

/** Fetch one md5-addressed object (a file, or a folder and its files) into the cache; returns its xxh64 hash. */
export async function fetchMd5(remote: RemoteStore, store: ObjectStore, cacheDir: string, md5: string): Promise<string> {
  const known = lookupMd5(cacheDir, md5);
  if (known && store.has(known)) return known;
  const tmp = store.tempPath();
  try {
    await downloadVerified(remote, md5, tmp);
    let hash: string;
    if (!md5.endsWith('.dir')) {
      hash = (await hashFile(tmp)).hash;
      const problem = await store.admit(tmp, hash);
      if (problem) throw new Error(`md5 object ${md5}: ${problem}`);
    } else {
      let listing: unknown;
      try {
        listing = JSON.parse(fs.readFileSync(tmp, 'utf8'));
      } catch {
        listing = undefined;
      }
      if (!Array.isArray(listing)) throw new Error(`md5 object ${md5} is not a DVC folder listing`);
      const entries: ManifestEntry[] = [];
      for (const e of listing as { md5?: unknown; relpath?: unknown }[]) {
        if (typeof e?.md5 !== 'string' || !/^[0-9a-f]{32}$/.test(e.md5) || typeof e.relpath !== 'string')
          throw new Error(`md5 object ${md5} has a malformed entry`);
        const bad = unsafeRelpath(e.relpath);
        if (bad) throw new Error(`md5 object ${md5} names '${e.relpath}', which ${bad}`);
        const h = await fetchMd5(remote, store, cacheDir, e.md5);
        entries.push({ relpath: e.relpath, hash: h, size: store.size(h) });
      }
      entries.sort((a, b) => (a.relpath < b.relpath ? -1 : a.relpath > b.relpath ? 1 : 0));
      hash = await store.addManifest(entries);
    }
    writeFileAtomic(indexFile(cacheDir, md5), hash + '\n', { durable: false });
    return hash;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
