import fs from 'node:fs';
import path from 'node:path';
import { hashFile, hashString, yieldDue, yieldForSignals } from './xxhash.js';
import { TreeRecord, type StatCache } from './stat-cache.js';
import { appendSig, sameSig, settled, sigOf, SIG_WIDTH } from './signature.js';
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

/** Hashes files, directories and globs, consulting the stat cache first. */
export class TreeHasher {
  /** Temp files and folders a walk skipped (left by killed runs, or in flight): for the caller to sweep. */
  readonly temps: string[] = [];
  /** The repository's own state, never part of a directory's content even when a link leads there. */
  private readonly skip: readonly string[];

  constructor(
    private readonly statCache: StatCache,
    private readonly root?: string,
  ) {
    const real = root === undefined ? undefined : realOr(root);
    this.skip = real === undefined ? [] : [path.join(real, '.git'), path.join(real, '.lockstep')];
  }

  async hashPath(abs: string): Promise<PathState> {
    // Taken before any stat: what changes after it cannot be remembered as unchanged (see `settled`).
    const readStart = Date.now();
    let st: fs.Stats;
    try {
      st = fs.statSync(abs); // follows symlinks, as deps should
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return { kind: 'missing' };
      if (errnoCode(e) === 'ELOOP') throw new UserError({ message: `'${this.display(abs)}' is a symlink loop` });
      throw e;
    }
    if (st.isDirectory()) {
      const files = emptyListing();
      walk(abs, '', { out: files, chain: [fs.realpathSync(abs)], skip: this.skip, temps: this.temps });
      return this.manifestOf(abs, abs, files, readStart);
    }
    // Opening a FIFO blocks until a writer comes (and a device may never end): refuse before any open.
    if (!st.isFile())
      throw new UserError({
        message: `'${this.display(abs)}' is ${specialKind(st)}, not a file or directory; only files and directories can be deps or outputs`,
      });
    return { kind: 'file', ...(await this.hashRegular(abs, st, readStart)) };
  }

  private display(abs: string): string {
    if (this.root === undefined) return abs;
    const rel = path.relative(this.root, abs);
    return rel === '' ? '.' : rel.split(path.sep).join('/');
  }

  /** A glob dep is hashed like a directory whose entries are the matches (repo-relative). */
  async hashGlob(root: string, pattern: string): Promise<HashInfo> {
    const readStart = Date.now();
    const { default: fg } = await import('fast-glob'); // only glob deps pay for loading it
    // Temp litter (a checkout or a killed run's) is not content; nor is the repository's own state.
    const matches = await fg(pattern, {
      cwd: root,
      dot: true,
      onlyFiles: true,
      followSymbolicLinks: true,
      ignore: ['.git/**', '.lockstep/**', '**/*.lockstep-tmp-*', '**/*.lockstep-tmp-*/**'],
    });
    // fast-glob follows links round a cycle until the OS stops it (d/up/d/up/…): keep only matches reached
    // without revisiting a folder, and none that a link leads into .git or .lockstep.
    const rootReal = realOr(root) ?? root;
    const reals = new Map<string, string[] | null>();
    const files = emptyListing();
    // fast-glob's order depends on which read finished first: sorted, a listing matches the record run after run.
    for (const relpath of matches.sort()) {
      const chain = chainOf(rootReal, path.posix.dirname(relpath), reals);
      if (chain === null || this.skip.some((s) => chain.some((c) => isWithin(s, c)))) continue;
      files.relpaths.push(relpath);
      appendSig(files.sigs, fs.statSync(path.join(root, relpath)));
    }
    return this.manifestOf(`glob:${root}\0${pattern}`, root, files, readStart);
  }

  /**
   * The folder's hash from its listing. When the stat cache's record of the
   * folder matches the listing file for file, that is the answer and nothing
   * else is done; otherwise files whose signature the record still holds keep
   * their hash, the others are read, and the record is replaced.
   */
  private async manifestOf(key: string, base: string, files: Listing, readStart: number): Promise<HashInfo> {
    const rec = this.statCache.tree(key);
    if (rec && rec.complete && sameListing(rec, files)) return dirState(rec);
    const n = files.relpaths.length;
    const index = rec?.indexByName();
    const hashes = new Array<string>(n);
    const kept = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      const at = i * SIG_WIDTH;
      const j = index?.get(files.relpaths[i]!);
      const known = j !== undefined && sameSig(rec!.sigs, j * SIG_WIDTH, files.sigs, at) ? rec!.hashes[j]! : '';
      if (known !== '') {
        hashes[i] = kept[i] = known;
        continue;
      }
      if (yieldDue()) await yieldForSignals();
      const { hash, size } = await hashFile(`${base}/${files.relpaths[i]!}`);
      hashes[i] = hash;
      // Only remembered when the file did not change under us while we read it, nor too recently to tell.
      kept[i] = size === files.sigs[at] && settled(files.sigs, readStart, at) ? hash : '';
    }
    const sigs = Float64Array.from(files.sigs);
    const manifest = sortedManifest(files.relpaths, hashes, sigs);
    const record = TreeRecord.of(files.relpaths, sigs, kept, await manifestHash(manifest));
    this.statCache.setTree(key, record);
    return dirState(record, manifest);
  }

  private async hashRegular(abs: string, st: fs.Stats, readStart: number): Promise<{ hash: string; size: number }> {
    const sig = sigOf(st);
    const cached = this.statCache.lookup(abs, sig);
    if (cached) return { hash: cached, size: st.size };
    const { hash, size } = await hashFile(abs);
    // Only remember when the file did not change under us while we read it.
    if (size === st.size) this.statCache.remember(abs, sig, hash, readStart);
    return { hash, size };
  }
}

/** The regular files under a folder in walk order, as columns: paths, and SIG_WIDTH numbers each (no Stats kept alive). */
export interface Listing {
  readonly relpaths: string[];
  readonly sigs: number[];
}

function emptyListing(): Listing {
  return { relpaths: [], sigs: [] };
}

function sameListing(rec: TreeRecord, files: Listing): boolean {
  const n = files.relpaths.length;
  if (rec.n !== n) return false;
  const names = rec.names;
  for (let i = 0; i < n; i++) {
    if (names[i] !== files.relpaths[i] || !sameSig(rec.sigs, i * SIG_WIDTH, files.sigs, i * SIG_WIDTH)) return false;
  }
  return true;
}

/** A folder's state; its manifest (only saving or verifying needs it) is built on first use. */
function dirState(rec: TreeRecord, manifest?: ManifestEntry[]): HashInfo {
  let size = 0;
  for (let i = 0; i < rec.n; i++) size += rec.sigs[i * SIG_WIDTH]!;
  const state = { kind: 'dir' as const, hash: rec.hash, size, nfiles: rec.n };
  // An own enumerable getter, so spreading or serialising the state still sees the manifest.
  Object.defineProperty(state, 'manifest', { enumerable: true, get: () => (manifest ??= sortedManifest(rec.names, rec.hashes, rec.sigs)) });
  return state as HashInfo;
}

/** Manifest entries sorted by path, as the folder's hash is taken over them. */
function sortedManifest(relpaths: readonly string[], hashes: readonly string[], sigs: Float64Array): ManifestEntry[] {
  const order = relpaths.map((_, i) => i).sort((a, b) => (relpaths[a]! < relpaths[b]! ? -1 : relpaths[a]! > relpaths[b]! ? 1 : 0));
  return order.map((i) => ({ relpath: relpaths[i]!, hash: hashes[i]!, size: sigs[i * SIG_WIDTH]! }));
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
 * One readdir per folder and one stat per file; folders that are not links
 * need no stat and no realpath (their real path is their parent's plus their name).
 */
export interface WalkState {
  /** Where the files found go: their paths and stat signatures, in columns. */
  readonly out: Listing;
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
    const name = ent.name;
    const abs = dirAbs + '/' + name;
    // A checkout's temp file is not content: counting it would make an output look modified.
    if (isTempName(name)) {
      temps.push(abs);
      continue;
    }
    const relpath = prefix ? prefix + '/' + name : name;
    if (ent.isDirectory()) {
      const real = dirReal + '/' + name;
      if (skip.some((s) => isWithin(s, real))) continue;
      chain.push(real);
      walk(abs, relpath, state);
      chain.pop();
      continue;
    }
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(abs, { throwIfNoEntry: false });
    } catch (e) {
      if (errnoCode(e) === 'ELOOP' || errnoCode(e) === 'ENOENT') continue; // looping (or vanished) symlink: nothing to hash
      throw e;
    }
    if (st === undefined) continue; // dangling symlink, or removed since the listing
    if (st.isDirectory()) {
      // Only a symlinked directory can close a loop.
      const real = fs.realpathSync(abs);
      if (chain.some((c) => isWithin(real, c))) continue;
      if (skip.some((s) => isWithin(s, real))) continue;
      chain.push(real);
      walk(abs, relpath, state);
      chain.pop();
    } else if (st.isFile()) {
      out.relpaths.push(relpath);
      appendSig(out.sigs, st);
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
