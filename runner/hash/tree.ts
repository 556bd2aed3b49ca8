import fs from 'node:fs';
import path from 'node:path';
import { hashFile, hashString, yieldDue, yieldForSignals } from './xxhash.js';
import type { StatCache, FileStat } from './stat-cache.js';
import { errnoCode } from '../fs-util.js';
import { isTempName } from '../litter.js';
import { UserError } from '../errors.js';
import { isWithin } from '../paths.js';

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
  /** Temp files and folders a walk skipped (left by killed runs, or in flight): for the caller to sweep. */
  readonly temps: string[] = [];
  /** The repository's own state, never part of a directory's content even when a link leads there. */
  private readonly skip: readonly string[];

  constructor(private readonly statCache: StatCache, private readonly root?: string) {
    const real = root === undefined ? undefined : realOr(root);
    this.skip = real === undefined ? [] : [path.join(real, '.git'), path.join(real, '.lockstep')];
  }

  async hashPath(abs: string): Promise<PathState> {
    let st: fs.Stats;
    try {
      st = fs.statSync(abs); // follows symlinks, as deps should
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return { kind: 'missing' };
      if (errnoCode(e) === 'ELOOP') throw new UserError({ message: `'${this.display(abs)}' is a symlink loop` });
      throw e;
    }
    if (st.isDirectory()) {
      const files: { relpath: string; abs: string; st: fs.Stats }[] = [];
      walk(abs, '', { out: files, chain: [fs.realpathSync(abs)], skip: this.skip, temps: this.temps });
      return this.manifestOf(files);
    }
    // Opening a FIFO blocks until a writer comes (and a device may never end): refuse before any open.
    if (!st.isFile()) throw new UserError({ message: `'${this.display(abs)}' is ${specialKind(st)}, not a file or directory; only files and directories can be deps or outputs` });
    return { kind: 'file', ...(await this.hashRegular(abs, st)) };
  }

  private display(abs: string): string {
    if (this.root === undefined) return abs;
    const rel = path.relative(this.root, abs);
    return rel === '' ? '.' : rel.split(path.sep).join('/');
  }

  /** A glob dep is hashed like a directory whose entries are the matches (repo-relative). */
  async hashGlob(root: string, pattern: string): Promise<HashInfo> {
    const { default: fg } = await import('fast-glob'); // only glob deps pay for loading it
    // Temp litter (a checkout or a killed run's) is not content; nor is the repository's own state.
    const matches = await fg(pattern, { cwd: root, dot: true, onlyFiles: true, followSymbolicLinks: true, ignore: ['.git/**', '.lockstep/**', '**/*.lockstep-tmp-*', '**/*.lockstep-tmp-*/**'] });
    // fast-glob follows links round a cycle until the OS stops it (d/up/d/up/…): keep only matches reached
    // without revisiting a folder, and none that a link leads into .git or .lockstep.
    const rootReal = realOr(root) ?? root;
    const reals = new Map<string, string[] | null>();
    const files = matches
      .filter((relpath) => {
        const chain = chainOf(rootReal, path.posix.dirname(relpath), reals);
        return chain !== null && !this.skip.some((s) => chain.some((c) => isWithin(s, c)));
      })
      .map((relpath) => {
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
      if (yieldDue()) await yieldForSignals();
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

/**
 * Collect the regular files under a directory, following symlinks. `chain`
 * holds the real paths of the directories being walked, outermost first: a
 * link to any of them or to a folder holding one (`up -> ..`) would walk in
 * circles, and is left out, as are the repository's .git and .lockstep.
 * Special files (FIFOs, sockets, devices) are not content and are left out.
 */
export interface WalkState {
  /** Where the files found go. */
  readonly out: { relpath: string; abs: string; st: fs.Stats }[];
  /** Real paths of the directories being walked, outermost first (starts with the root's). */
  readonly chain: string[];
  /** Real paths never walked into. */
  readonly skip: readonly string[];
  /** Where temp files found on the way go. */
  readonly temps: string[];
}

export function walk(dirAbs: string, prefix: string, state: WalkState): void {
  const { out, chain, skip, temps } = state;
  const dirReal = chain[chain.length - 1]!;
  for (const ent of fs.readdirSync(dirAbs, { withFileTypes: true })) {
    const abs = dirAbs + '/' + ent.name;
    // A checkout's temp file is not content: counting it would make an output look modified.
    if (isTempName(ent.name)) {
      temps.push(abs);
      continue;
    }
    const relpath = prefix ? `${prefix}/${ent.name}` : ent.name;
    let st: fs.Stats;
    try {
      st = fs.statSync(abs);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ELOOP') continue; // dangling or looping symlink: nothing to hash
      throw e;
    }
    if (st.isDirectory()) {
      // Only a symlinked directory can close a loop; a plain one's real path is its parent's plus its name.
      const real = ent.isSymbolicLink() ? fs.realpathSync(abs) : dirReal + '/' + ent.name;
      if (ent.isSymbolicLink() && chain.some((c) => isWithin(real, c))) continue;
      if (skip.some((s) => isWithin(s, real))) continue;
      chain.push(real);
      walk(abs, relpath, state);
      chain.pop();
    } else if (st.isFile()) {
      out.push({ relpath, abs, st });
    }
  }
}

/**
 * The real paths of the folders on the way to repository folder `dir`
 * (root first), or null when a symlink on the way leads back to one of them
 * or to a folder holding one: a path only a link cycle can spell.
 */
function chainOf(rootReal: string, dir: string, memo: Map<string, string[] | null>): string[] | null {
  if (dir === '.' || dir === '') return [rootReal];
  const hit = memo.get(dir);
  if (hit !== undefined) return hit;
  const slash = dir.lastIndexOf('/');
  const parent = chainOf(rootReal, slash < 0 ? '.' : dir.slice(0, slash), memo);
  let chain: string[] | null = null;
  if (parent !== null) {
    const here = path.join(parent[parent.length - 1]!, dir.slice(slash + 1));
    const real = realOr(here) ?? here;
    const linked = real !== here;
    chain = linked && parent.some((c) => isWithin(real, c)) ? null : [...parent, real];
  }
  memo.set(dir, chain);
  return chain;
}

function realOr(p: string): string | undefined {
  try {
    return fs.realpathSync(p);
  } catch {
    return undefined;
  }
}

function specialKind(st: fs.Stats): string {
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'a special file';
}
