import { manifestHash, type ManifestEntry } from '../hash/tree.js';

/**
 * A directory output is stored as a manifest object (sorted relpath → file
 * hash) plus one object per file. A manifest comes from disk or a remote, so
 * it is untrusted until checked: its hash must match its name, and no entry
 * may point outside the output it describes.
 */

export function serializeManifest(entries: readonly ManifestEntry[]): string {
  return JSON.stringify(entries.map((e) => ({ relpath: e.relpath, hash: e.hash, size: e.size })));
}

/** Why a manifest relpath is unsafe, or undefined when it is a plain relative path inside the output. */
export function unsafeRelpath(relpath: string): string | undefined {
  if (relpath === '' || relpath.includes('\0')) return 'is empty or has a NUL byte';
  if (relpath.startsWith('/') || /^[A-Za-z]:/.test(relpath)) return 'is absolute';
  if (relpath.includes('\\')) return 'has a backslash';
  if (relpath.split('/').some((s) => s === '..' || s === '.' || s === '')) return "has a '..', '.' or empty segment";
  return undefined;
}

export type ManifestResult = { ok: true; entries: ManifestEntry[] } | { ok: false; problem: string };

export async function parseManifest(text: string, expectedHash: string): Promise<ManifestResult> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'is not valid JSON' };
  }
  if (!Array.isArray(raw)) return { ok: false, problem: 'is not a list of files' };
  const entries: ManifestEntry[] = [];
  let prev: string | undefined;
  for (const e of raw as unknown[]) {
    const x = e as Partial<ManifestEntry> | null;
    if (!x || typeof x.relpath !== 'string' || typeof x.hash !== 'string' || typeof x.size !== 'number' || !/^[0-9a-f]{16}$/.test(x.hash)) {
      return { ok: false, problem: 'has a malformed entry' };
    }
    const bad = unsafeRelpath(x.relpath);
    if (bad) return { ok: false, problem: `names '${x.relpath}', which ${bad}: it would write outside its output` };
    if (prev !== undefined && !(prev < x.relpath)) return { ok: false, problem: 'is not sorted or repeats a path' };
    prev = x.relpath;
    entries.push({ relpath: x.relpath, hash: x.hash, size: x.size });
  }
  // A file and a directory of the same name cannot both exist: 'a' then 'a/b'.
  const names = new Set(entries.map((e) => e.relpath));
  for (const e of entries) {
    const segs = e.relpath.split('/');
    for (let i = 1; i < segs.length; i++) {
      if (names.has(segs.slice(0, i).join('/'))) return { ok: false, problem: `uses '${segs.slice(0, i).join('/')}' as both a file and a folder` };
    }
  }
  if ((await manifestHash(entries)) !== expectedHash) return { ok: false, problem: 'does not match its hash (corrupted or tampered with)' };
  return { ok: true, entries };
}
