import fs from 'node:fs';
import path from 'node:path';
import { hashFile, hashString } from './xxhash.js';
import type { StatCache, FileStat } from './stat-cache.js';
import { errnoCode } from '../fs-util.js';

export interface ManifestEntry {
  /** POSIX path relative to the directory (or, for a glob, to the repository). */
  readonly relpath: string;
  readonly hash: string;
  readonly size: number;
}

export type HashInfo =
  /** `etag`: for an external dep (https://, s3://), the server's version id the hash stands for. */
  | { readonly kind: 'file'; readonly hash: string; readonly size: number; readonly etag?: string }
  | {
      readonly kind: 'dir';
      /** Hash of the sorted manifest, suffixed `.dir` as DVC does so the two kinds never collide. */
      readonly hash: string;
      readonly size: number;
      readonly nfiles: number;
      readonly manifest: readonly ManifestEntry[];
    };

export type PathState = HashInfo | { readonly kind: 'missing' };

function toFileStat(st: fs.Stats): FileStat {
  return { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
}

/** Hashes files, directories and globs, consulting the stat cache first. */
export class TreeHasher {
  constructor(private readonly statCache: StatCache) {}

  async hashPath(abs: string): Promise<PathState> {
    let st: fs.Stats;
    try {
      st = fs.statSync(abs); // follows symlinks, as deps should
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return { kind: 'missing' };
      throw e;
    }
    if (st.isDirectory()) {
      const files: { relpath: string; abs: string; st: fs.Stats }[] = [];
      walk(abs, '', files, new Set([fs.realpathSync(abs)]));
      return this.manifestOf(files);
    }
    return { kind: 'file', ...(await this.hashRegular(abs, st)) };
  }

  /** A glob dep is hashed like a directory whose entries are the matches (repo-relative). */
  async hashGlob(root: string, pattern: string): Promise<HashInfo> {
    const { default: fg } = await import('fast-glob'); // only glob deps pay for loading it
    const matches = await fg(pattern, { cwd: root, dot: true, onlyFiles: true, followSymbolicLinks: true });
    const files = matches.map((relpath) => {
      const abs = path.join(root, relpath);
      return { relpath, abs, st: fs.statSync(abs) };
    });
    return this.manifestOf(files);
  }

  private async manifestOf(files: { relpath: string; abs: string; st: fs.Stats }[]): Promise<HashInfo> {
    files.sort((a, b) => (a.relpath < b.relpath ? -1 : a.relpath > b.relpath ? 1 : 0));
    const manifest: ManifestEntry[] = [];
    let size = 0;
    for (const f of files) {
      // The cached path stays synchronous: thousands of awaits cost more than the lookups.
      const hash = this.statCache.lookup(f.abs, toFileStat(f.st)) ?? (await this.hashRegular(f.abs, f.st)).hash;
      manifest.push({ relpath: f.relpath, hash, size: f.st.size });
      size += f.st.size;
    }
    return { kind: 'dir', hash: await manifestHash(manifest), size, nfiles: manifest.length, manifest };
  }

  private async hashRegular(abs: string, st: fs.Stats): Promise<{ hash: string; size: number }> {
    const fst = toFileStat(st);
    const cached = this.statCache.lookup(abs, fst);
    if (cached) return { hash: cached, size: fst.size };
    const { hash, size } = await hashFile(abs);
    // Only remember when the file did not change under us while we read it.
    if (size === fst.size) this.statCache.remember(abs, fst, hash);
    return { hash, size };
  }
}

export async function manifestHash(manifest: readonly ManifestEntry[]): Promise<string> {
  let text = '';
  for (const e of manifest) text += `${e.relpath}\0${e.hash}\0${e.size}\n`;
  return (await hashString(text)) + '.dir';
}

function walk(
  dirAbs: string,
  prefix: string,
  out: { relpath: string; abs: string; st: fs.Stats }[],
  seen: Set<string>,
): void {
  for (const ent of fs.readdirSync(dirAbs, { withFileTypes: true })) {
    const abs = dirAbs + '/' + ent.name;
    const relpath = prefix ? `${prefix}/${ent.name}` : ent.name;
    let st: fs.Stats;
    try {
      st = fs.statSync(abs);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') continue; // dangling symlink: nothing to hash
      throw e;
    }
    if (st.isDirectory()) {
      // Only a symlinked directory can close a loop; plain ones need no realpath.
      const real = ent.isSymbolicLink() ? fs.realpathSync(abs) : undefined;
      if (real !== undefined) {
        if (seen.has(real)) continue;
        seen.add(real);
      }
      walk(abs, relpath, out, seen);
      if (real !== undefined) seen.delete(real);
    } else if (st.isFile()) {
      out.push({ relpath, abs, st });
    }
  }
}
