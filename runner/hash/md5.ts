import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../fs-util.js';
import { sameSig, settled, sigOf, SIG_WIDTH, type Sig } from './signature.js';

/**
 * md5 as DVC computes it, only to read a DVC repository's `.dvc` files: our
 * own cache keys are xxh64. A file is the md5 of its bytes; a folder is the
 * md5 of its sorted `[{"md5": …, "relpath": …}, …]` listing serialised as
 * Python's json.dumps writes it, suffixed `.dir`.
 */
function md5File(abs: string): string {
  const h = crypto.createHash('md5');
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = fs.openSync(abs, 'r');
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(n === buf.length ? buf : buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

function filesUnder(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...filesUnder(dir, r));
    else if (e.isFile() || (e.isSymbolicLink() && fs.statSync(path.join(dir, r)).isFile())) out.push(r);
  }
  return out;
}

/** A string as Python's json.dumps writes it (ensure_ascii: every non-ASCII character as \uXXXX). */
function pyJsonString(s: string): string {
  return JSON.stringify(s).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * DVC 2 files (no `hash:` field) hashed text files with Windows line ends
 * turned into Unix ones ("md5-dos2unix"); DVC 3 (`hash: md5`) hashes bytes.
 * Text, as DVC guesses it: no NUL byte in the first 512 bytes.
 */
function md5Dos2Unix(abs: string): string {
  const data = fs.readFileSync(abs);
  if (data.subarray(0, 512).includes(0)) return crypto.createHash('md5').update(data).digest('hex');
  return crypto.createHash('md5').update(data.toString('latin1').replace(/\r\n/g, '\n'), 'latin1').digest('hex');
}

/**
 * File md5s remembered by stat signature (`signature.ts`), as the stat cache
 * does for xxh64: a DVC dataset of many gigabytes is read once, not on every status.
 */
type Md5Entry = [...Sig, string];

export class Md5Memo {
  private changed = false;
  private constructor(
    private readonly file: string,
    private readonly map: Record<string, Md5Entry>,
  ) {}

  static load(stateDir: string): Md5Memo {
    const file = path.join(stateDir, 'md5-cache.json');
    try {
      const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: number; entries?: Record<string, Md5Entry> };
      if (doc.version === VERSION && doc.entries && typeof doc.entries === 'object') return new Md5Memo(file, doc.entries);
    } catch {
      // missing or damaged: only a cache
    }
    return new Md5Memo(file, {});
  }

  hash(abs: string, flavour: string, compute: (abs: string) => string): string {
    const readStart = Date.now();
    const st = fs.statSync(abs);
    const key = `${flavour}:${abs}`;
    const hit = this.map[key];
    const sig = sigOf(st);
    if (Array.isArray(hit) && hit.length === SIG_WIDTH + 1 && sameSig(hit, 0, sig)) return hit[SIG_WIDTH] as string;
    const h = compute(abs);
    if (settled(sig, readStart)) {
      this.map[key] = [...sig, h];
      this.changed = true;
    }
    return h;
  }

  save(): void {
    if (!this.changed) return;
    try {
      writeFileAtomic(this.file, JSON.stringify({ version: VERSION, entries: this.map }), { durable: false });
    } catch {
      // only a cache
    }
  }
}

/** Entries are `[size, mtimeMs, ctimeMs, ino, md5]`; version 1 (unversioned) lacked the ctime. */
const VERSION = 2;

/** md5 of a path as DVC records it (`legacy`: DVC 2's dos2unix flavour); undefined when it does not exist. */
export function md5Path(abs: string, legacy = false, memo?: Md5Memo): string | undefined {
  const raw = legacy ? md5Dos2Unix : md5File;
  const fileHash = memo ? (f: string) => memo.hash(f, legacy ? 'dos2unix' : 'md5', raw) : raw;
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    return undefined;
  }
  if (!st.isDirectory()) return fileHash(abs);
  // dvc-data sorts the listing by relpath as plain strings and writes it with json.dumps(sort_keys=True).
  const files = filesUnder(abs).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const listing = '[' + files.map((f) => `{"md5": "${fileHash(path.join(abs, f))}", "relpath": ${pyJsonString(f)}}`).join(', ') + ']';
  return crypto.createHash('md5').update(listing).digest('hex') + '.dir';
}
