import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../fs-util.js';
import { SIG_WIDTH, sameSig, settled } from './signature.js';

/**
 * Remembers file content hashes by stat signature (`signature.ts`), so
 * unchanged files are not read again. Lives in .lockstep/stat-cache.bin;
 * losing or damaging it only costs time: a file that fails its checksum is
 * ignored as a whole.
 *
 * Its unit is the folder: one record per folder hashed as a whole (a
 * directory dep or output, a glob), its files in walk order as columns —
 * relative paths, signatures, hashes — with the folder's own hash. A no-op
 * compares a fresh walk with the record in one pass and, when every file
 * matches, takes the folder's hash as recorded: no per-file lookups, no
 * manifest, nothing hashed. Binary and columnar because a 10,000-file folder
 * as JSON cost more to parse than walking the folder. Loose files (file deps)
 * share one record keyed '' whose paths are absolute.
 */
export class TreeRecord {
  private namesCache: string[] | undefined;
  private hashesCache: string[] | undefined;

  /**
   * `sigs`: SIG_WIDTH numbers per file. `hashes[i]` is '' for a file that must
   * be read again (it changed too recently to trust, see `settled`).
   * `complete`: every hash is there, so the record's `hash` can be trusted.
   */
  private constructor(
    readonly n: number,
    readonly sigs: Float64Array,
    readonly hash: string,
    readonly complete: boolean,
    private readonly source: { names: () => string[]; hashes: () => string[]; raw?: Uint8Array },
  ) {}

  static of(names: string[], sigs: Float64Array, hashes: string[], hash: string): TreeRecord {
    return new TreeRecord(names.length, sigs, hash, !hashes.includes(''), { names: () => names, hashes: () => hashes });
  }

  get names(): string[] {
    return (this.namesCache ??= this.source.names());
  }

  get hashes(): string[] {
    return (this.hashesCache ??= this.source.hashes());
  }

  /** Index of each path, for matching a walk that differs from the record. */
  indexByName(): Map<string, number> {
    const m = new Map<string, number>();
    this.names.forEach((name, i) => m.set(name, i));
    return m;
  }

  /** The bytes of this record as stored (kept as read when it was loaded and never changed). */
  encode(key: string): Uint8Array {
    if (this.source.raw) return this.source.raw;
    const keyB = Buffer.from(key, 'utf8');
    const hashB = Buffer.from(this.hash, 'latin1');
    const namesB = Buffer.from(this.names.join('\0'), 'utf8');
    const hashesB = Buffer.from(this.hashes.join('\0'), 'latin1');
    const bodyLen = HEAD + this.sigs.byteLength + keyB.length + hashB.length + namesB.length + hashesB.length;
    const out = Buffer.alloc(align8(bodyLen));
    const head = new Uint32Array(out.buffer, out.byteOffset, HEAD / 4);
    head.set([this.n, keyB.length, hashB.length, namesB.length, hashesB.length, this.complete ? 1 : 0, bodyLen, 0]);
    let at = HEAD;
    out.set(new Uint8Array(this.sigs.buffer, this.sigs.byteOffset, this.sigs.byteLength), at);
    at += this.sigs.byteLength;
    for (const b of [keyB, hashB, namesB, hashesB]) {
      out.set(b, at);
      at += b.length;
    }
    return out;
  }

  /** Read the record at `at` of `buf` (8-byte aligned); throws on anything out of bounds. */
  static decode(buf: Buffer, at: number): { key: string; record: TreeRecord; next: number } {
    if (at + HEAD > buf.length) throw new Error('truncated');
    const [n, keyLen, hashLen, namesLen, hashesLen, complete, bodyLen] = new Uint32Array(buf.buffer, buf.byteOffset + at, HEAD / 4) as unknown as number[];
    const sigBytes = n! * SIG_WIDTH * 8;
    if (bodyLen !== HEAD + sigBytes + keyLen! + hashLen! + namesLen! + hashesLen! || at + bodyLen > buf.length) throw new Error('bad record');
    const sigs = new Float64Array(buf.buffer, buf.byteOffset + at + HEAD, n! * SIG_WIDTH);
    let p = at + HEAD + sigBytes;
    const key = buf.toString('utf8', p, (p += keyLen!));
    const hash = buf.toString('latin1', p, (p += hashLen!));
    const namesAt = p;
    const hashesAt = p + namesLen!;
    const split = (s: string) => (n === 0 ? [] : s.split('\0'));
    const names = () => checkLength(split(buf.toString('utf8', namesAt, namesAt + namesLen!)), n!, '\0');
    const hashes = () => checkLength(split(buf.toString('latin1', hashesAt, hashesAt + hashesLen!)), n!, '');
    const next = at + align8(bodyLen!);
    const record = new TreeRecord(n!, sigs, hash, complete === 1, { names, hashes, raw: buf.subarray(at, next) });
    return { key, record, next };
  }
}

/** Record header: n, key, hash, names and hashes lengths, complete, body length, spare (u32 each). */
const HEAD = 32;
const MAGIC = 0x3143534c; // 'LSC1' little-endian; a new layout takes a new magic
const FILE_HEAD = 16;

function align8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * The checksum makes a wrong count unreachable short of a bug; should it happen anyway, no path may be
 * paired with another's hash: the record then matches no walk ('\0' is in no file name) and trusts no hash.
 */
function checkLength(xs: string[], n: number, filler: string): string[] {
  return xs.length === n ? xs : new Array<string>(n).fill(filler);
}

/** A 32-bit checksum of whole words: damage (a torn copy, a flipped bit) fails it, and it costs ~1 ms per MB. */
function checksum(buf: Buffer, from: number): number {
  const words = new Int32Array(buf.buffer, buf.byteOffset + from, (buf.length - from) >> 2);
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i]!, 0x01000193) ^ (h >>> 15);
  return h >>> 0;
}

const LOOSE = '';

export class StatCache {
  private dirty = false;
  private loose: Map<string, { sig: Float64Array; hash: string }> | undefined;
  private readonly used = new Set<string>();

  private constructor(
    private readonly file: string,
    private readonly trees: Map<string, TreeRecord>,
  ) {}

  static load(stateDir: string): StatCache {
    const file = path.join(stateDir, 'stat-cache.bin');
    return new StatCache(file, readRecords(file));
  }

  static inMemory(): StatCache {
    return new StatCache('', new Map());
  }

  /** The record of folder (or glob) `key`, if one was saved. */
  tree(key: string): TreeRecord | undefined {
    this.used.add(key);
    return this.trees.get(key);
  }

  setTree(key: string, rec: TreeRecord): void {
    this.used.add(key);
    this.trees.set(key, rec);
    this.dirty = true;
  }

  /** The hash of loose file `absPath` when its signature is still `sig`. */
  lookup(absPath: string, sig: ArrayLike<number>): string | undefined {
    const e = this.looseMap().get(absPath);
    return e && sameSig(e.sig, 0, sig) ? e.hash : undefined;
  }

  /** Remember a loose file's hash, read starting at `readStart` (see `settled`). */
  remember(absPath: string, sig: ArrayLike<number>, hash: string, readStart: number): void {
    if (!settled(sig, readStart)) return;
    const m = this.looseMap();
    const prev = m.get(absPath);
    if (prev && prev.hash === hash && sameSig(prev.sig, 0, sig)) return;
    m.set(absPath, { sig: Float64Array.from({ length: SIG_WIDTH }, (_, i) => sig[i]!), hash });
    this.dirty = true;
  }

  private looseMap(): Map<string, { sig: Float64Array; hash: string }> {
    if (this.loose) return this.loose;
    this.loose = new Map();
    const rec = this.trees.get(LOOSE);
    if (rec) rec.names.forEach((name, i) => this.loose!.set(name, { sig: rec.sigs.slice(i * SIG_WIDTH, (i + 1) * SIG_WIDTH), hash: rec.hashes[i]! }));
    return this.loose;
  }

  /** Write the cache if this run learned anything; records of folders that are gone are dropped. */
  save(): void {
    if (!this.dirty || !this.file) return;
    if (this.loose) {
      const names = [...this.loose.keys()];
      const sigs = new Float64Array(names.length * SIG_WIDTH);
      const hashes = names.map((name, i) => {
        const e = this.loose!.get(name)!;
        sigs.set(e.sig, i * SIG_WIDTH);
        return e.hash;
      });
      this.trees.set(LOOSE, TreeRecord.of(names, sigs, hashes, ''));
    }
    const parts: Uint8Array[] = [];
    let count = 0;
    for (const [key, rec] of this.trees) {
      if (key !== LOOSE && !this.used.has(key) && key.startsWith('/') && !fs.existsSync(key)) continue;
      parts.push(rec.encode(key));
      count++;
    }
    // Buffer.alloc never hands out a slice of the shared pool: the typed-array views below are aligned.
    const body = Buffer.alloc(parts.reduce((n, p) => n + p.length, FILE_HEAD));
    let at = FILE_HEAD;
    for (const p of parts) {
      body.set(p, at);
      at += p.length;
    }
    const head = new Uint32Array(body.buffer, body.byteOffset, FILE_HEAD / 4);
    head[0] = MAGIC;
    head[1] = count;
    head[2] = checksum(body, FILE_HEAD);
    try {
      writeFileAtomic(this.file, body, { durable: false });
      this.dirty = false;
      // The JSON cache of earlier versions: nothing reads it any more.
      fs.rmSync(path.join(path.dirname(this.file), 'stat-cache.json'), { force: true });
    } catch {
      // only a cache
    }
  }
}

/** Every record of the cache file; none when it is missing, from another layout, or damaged anywhere. */
function readRecords(file: string): Map<string, TreeRecord> {
  const trees = new Map<string, TreeRecord>();
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch {
    return trees;
  }
  // Typed-array views need 8-byte alignment; a small read may come from Buffer's shared pool.
  if (buf.byteOffset % 8 !== 0) {
    const copy = Buffer.alloc(buf.length);
    buf.copy(copy);
    buf = copy;
  }
  try {
    if (buf.length < FILE_HEAD || buf.length % 8 !== 0) return trees;
    const [magic, count, sum] = new Uint32Array(buf.buffer, buf.byteOffset, 3) as unknown as number[];
    if (magic !== MAGIC || sum !== checksum(buf, FILE_HEAD)) return trees;
    let at = FILE_HEAD;
    for (let i = 0; i < count!; i++) {
      const { key, record, next } = TreeRecord.decode(buf, at);
      trees.set(key, record);
      at = next;
    }
    if (at !== buf.length) trees.clear();
  } catch {
    trees.clear();
  }
  return trees;
}
