import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { UserError } from './errors.js';
import { YamlSource } from './config/yaml-source.js';
import { isPlainObject } from './config/pipeline.js';
import { isContentHash } from './cache/layout.js';
import { writeFileAtomic } from './fs-util.js';
import { sameSig, settled, sigOfPath, type Sig } from './hash/signature.js';

/**
 * Data tracked outside the pipeline, as `dvc add` does it: a small YAML
 * pointer file `PATH.dvc` beside the data names its content hash; the data
 * itself lives in the cache and on remotes, never in git.
 *
 *   outs:
 *     - xxh64: 5a4e2b1ff3e5895c      (DVC's own files say `md5:`; both are read)
 *       size: 14445097
 *       hash: xxh64
 *       path: data.xml               (relative to the .dvc file's folder)
 */
export const POINTER_EXT = '.dvc';

type HashAlgo = 'xxh64' | 'md5';

interface TrackedOut {
  /** Repo-relative path of the data. */
  readonly path: string;
  readonly algo: HashAlgo;
  /** xxh64 (our cache's key) or md5 (a DVC repository's), `.dir` suffixed for a folder. */
  readonly hash: string;
  readonly size?: number;
  readonly nfiles?: number;
  /** An md5 pointer without `hash: md5`: DVC 2's, whose text files were hashed with Unix line ends. */
  readonly legacy?: boolean;
}

export interface PointerFile {
  /** Repo-relative path of the `.dvc` file. */
  readonly file: string;
  readonly outs: readonly TrackedOut[];
}

const MD5 = /^[0-9a-f]{32}(\.dir)?$/;

export function parsePointer(rel: string, text: string): PointerFile {
  const src = YamlSource.parse(rel, text);
  const doc = src.toJS();
  const bad = (message: string, at: (string | number)[] = []): UserError =>
    new UserError({
      message: `${message} (in ${rel})`,
      location: src.locate(at),
      hint: `a ${POINTER_EXT} file is 'outs: [{xxh64 or md5: HASH, path: NAME}]', as 'lockstep add' writes it`,
    });
  if (!isPlainObject(doc) || !Array.isArray(doc.outs) || doc.outs.length === 0) throw bad(`a ${POINTER_EXT} file needs a non-empty 'outs' list`);
  if (doc.deps !== undefined) throw bad(`'deps' in a ${POINTER_EXT} file (imports, import-url) is not supported by Lockstep`, ['deps']);
  const base = path.posix.join(path.posix.dirname(rel), typeof doc.wdir === 'string' ? doc.wdir : '.');
  const outs = doc.outs.map((o, i): TrackedOut => {
    if (!isPlainObject(o) || typeof o.path !== 'string' || o.path === '') throw bad(`outs entry ${i + 1} has no 'path'`, ['outs', i]);
    const p = path.posix.normalize(path.posix.join(base, o.path));
    if (p.startsWith('..') || path.isAbsolute(o.path)) throw bad(`'${o.path}' is outside the repository`, ['outs', i, 'path']);
    let algo: HashAlgo;
    let hash: unknown;
    if (o.xxh64 !== undefined) [algo, hash] = ['xxh64', o.xxh64];
    else if (o.md5 !== undefined) [algo, hash] = ['md5', o.md5];
    else throw bad(`outs entry '${o.path}' names no hash (xxh64 or md5)`, ['outs', i]);
    if (o.hash !== undefined && o.hash !== algo) throw bad(`outs entry '${o.path}' says 'hash: ${String(o.hash)}' but gives ${algo}`, ['outs', i, 'hash']);
    if (typeof hash !== 'string' || !(algo === 'md5' ? MD5.test(hash) : isContentHash(hash)))
      throw bad(`'${String(hash)}' is not a valid ${algo} hash`, ['outs', i, algo]);
    return {
      path: p,
      algo,
      hash,
      ...(typeof o.size === 'number' ? { size: o.size } : {}),
      ...(typeof o.nfiles === 'number' ? { nfiles: o.nfiles } : {}),
      ...(algo === 'md5' && o.hash === undefined ? { legacy: true } : {}),
    };
  });
  return { file: rel, outs };
}

function readPointer(root: string, rel: string): PointerFile {
  return parsePointer(rel, fs.readFileSync(path.join(root, rel), 'utf8'));
}

const SKIP = new Set(['.git', '.lockstep', '.dvc', 'node_modules']);
const SCAN_CACHE = path.join('.lockstep', 'pointer-scan.json');

/** Per folder: its stat signature when listed (null: changed too recently to trust), its subfolders, its pointer files. */
type ScanCache = Record<string, { s: Sig | null; d: string[]; p: string[] }>;

/**
 * Every `.dvc` pointer file in the repository (skipping git's, our own and
 * node_modules' folders). A folder's listing is remembered with its stat
 * signature (hash/signature.ts), whose mtime and ctime move whenever an entry
 * is added, removed or renamed: an unchanged folder costs one stat instead
 * of a listing (a 10,000-file data folder is not listed again on every status).
 */
export function findPointers(root: string): PointerFile[] {
  const cacheFile = path.join(root, SCAN_CACHE);
  let cache: ScanCache = {};
  try {
    cache = JSON.parse(fs.readFileSync(cacheFile, 'utf8')) as ScanCache;
  } catch {
    // first scan, or a damaged cache: list everything
  }
  const next: ScanCache = {};
  let changed = false;
  const found: string[] = [];
  const visit = (rel: string) => {
    const readStart = Date.now();
    const sig = sigOfPath(path.join(root, rel));
    if (!sig) return;
    let entry = cache[rel];
    if (!entry?.s || !Array.isArray(entry.s) || !sameSig(entry.s, 0, sig)) {
      changed = true;
      // A folder changed within a timestamp tick of this listing could change again unseen: list it next time too.
      entry = { s: settled(sig, readStart) ? sig : null, d: [], p: [] };
      for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
        if (e.isDirectory() && !SKIP.has(e.name)) entry.d.push(e.name);
        else if (e.isFile() && e.name.endsWith(POINTER_EXT) && e.name !== POINTER_EXT) entry.p.push(e.name);
      }
    }
    next[rel] = entry;
    for (const f of entry.p) found.push(rel ? `${rel}/${f}` : f);
    for (const d of entry.d) visit(rel ? `${rel}/${d}` : d);
  };
  visit('');
  if (changed || Object.keys(cache).length !== Object.keys(next).length) {
    try {
      writeFileAtomic(cacheFile, JSON.stringify(next), { durable: false });
    } catch {
      // read-only checkout: scanning again next time is all it costs
    }
  }
  return found.sort().map((f) => readPointer(root, f));
}

/** The pointer file that tracks `rel` (the path itself or a folder holding it), when there is one. Cheap: no walk. */
export function pointerFor(root: string, rel: string): string | undefined {
  for (let p = rel; p && p !== '.' && !p.startsWith('..'); p = path.posix.dirname(p)) {
    if (fs.existsSync(path.join(root, p + POINTER_EXT))) return p + POINTER_EXT;
  }
  return undefined;
}

/**
 * Write (or rewrite) the pointer file for `rel`. Fields we do not manage
 * (desc, meta, DVC's remote/push options) and any other outs it lists are
 * kept when it already exists.
 */
export function writePointer(root: string, rel: string, out: { hash: string; size: number; nfiles?: number }): string {
  const file = rel + POINTER_EXT;
  const abs = path.join(root, file);
  const name = path.posix.basename(rel);
  let doc: Record<string, unknown> = {};
  let outs: unknown[] = [];
  if (fs.existsSync(abs)) {
    const old = YamlSource.parse(file, fs.readFileSync(abs, 'utf8')).toJS(); // a broken one is named, not overwritten
    if (isPlainObject(old)) {
      doc = old;
      outs = Array.isArray(old.outs) ? old.outs : [];
    }
  }
  const at = outs.findIndex((o) => isPlainObject(o) && typeof o.path === 'string' && path.posix.normalize(o.path) === name);
  const { md5: _m, xxh64: _x, hash: _h, size: _s, nfiles: _n, path: _p, ...keep } = (at >= 0 ? outs[at] : {}) as Record<string, unknown>;
  const entry = { xxh64: out.hash, size: out.size, ...(out.nfiles !== undefined ? { nfiles: out.nfiles } : {}), hash: 'xxh64', path: name, ...keep };
  if (at >= 0) outs[at] = entry;
  else outs = [entry, ...outs];
  writeFileAtomic(abs, YAML.stringify({ ...doc, outs }, { lineWidth: 0 }));
  return file;
}
