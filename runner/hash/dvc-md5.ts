import crypto from 'node:crypto';
import fs from 'node:fs';
import { walk, type Listing } from './tree.js';
import { errnoCode } from '../fs-util.js';

/**
 * DVC's content hashes, so a repository's dvc.lock can be checked without DVC.
 * `md5` (DVC 3, `hash: md5` in the lock) is the md5 of the bytes. `md5-dos2unix`
 * (DVC 2 locks, no `hash:` field) first turns CRLF into LF in every 1 MiB chunk
 * whose first 512 bytes look like text — chunk by chunk, exactly as dvc-data reads.
 */
export type DvcHashName = 'md5' | 'md5-dos2unix';

const CHUNK = 1 << 20;
const TEXT_SAMPLE = 512;

/** dvc-data's text heuristic: no NUL byte and at most 30% bytes outside printable ASCII and \n\r\t\f\b. */
export function isTextBlock(block: Uint8Array): boolean {
  if (block.length === 0) return true;
  let nontext = 0;
  for (const b of block) {
    if (b === 0) return false;
    const text = (b >= 32 && b < 127) || b === 10 || b === 13 || b === 9 || b === 12 || b === 8;
    if (!text) nontext++;
  }
  return nontext / block.length <= 0.3;
}

function dos2unix(chunk: Buffer): Buffer {
  if (!chunk.includes(13)) return chunk;
  const out = Buffer.allocUnsafe(chunk.length);
  let n = 0;
  for (let i = 0; i < chunk.length; i++) {
    if (chunk[i] === 13 && chunk[i + 1] === 10) continue; // a CR at the very end of a chunk stays, as in DVC
    out[n++] = chunk[i]!;
  }
  return out.subarray(0, n);
}

function dvcFileMd5(abs: string, name: DvcHashName): string {
  const h = crypto.createHash('md5');
  const fd = fs.openSync(abs, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      // Fill the whole chunk (a short read is not the end): the dos2unix test is per 1 MiB chunk.
      let got = 0;
      while (got < CHUNK) {
        const n = fs.readSync(fd, buf, got, CHUNK - got, null);
        if (n === 0) break;
        got += n;
      }
      if (got === 0) break;
      const chunk = buf.subarray(0, got);
      h.update(name === 'md5-dos2unix' && isTextBlock(chunk.subarray(0, TEXT_SAMPLE)) ? dos2unix(chunk) : chunk);
      if (got < CHUNK) break;
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/**
 * A directory's hash as DVC computes it: md5 of `json.dumps(entries, sort_keys=True)`
 * where entries are `{"md5": …, "relpath": …}` sorted by relpath, then `.dir`.
 * Python's json.dumps separates with ", " and ": " and escapes every non-ASCII character.
 */
export function dvcTreeMd5(entries: readonly { relpath: string; md5: string }[]): string {
  const sorted = [...entries].sort((a, b) => cmpCodePoints(a.relpath, b.relpath));
  const json = '[' + sorted.map((e) => `{"md5": ${pyJsonString(e.md5)}, "relpath": ${pyJsonString(e.relpath)}}`).join(', ') + ']';
  return crypto.createHash('md5').update(json, 'utf8').digest('hex') + '.dir';
}

/** md5 of a file or directory as DVC records it in dvc.lock; undefined when it does not exist. */
export function dvcPathMd5(abs: string, name: DvcHashName): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
    throw e;
  }
  if (!st.isDirectory()) return dvcFileMd5(abs, name);
  const files: Listing = { relpaths: [], sigs: [] };
  // DVC hashes what is there: temp litter is not content, and the repository's own state is never walked into.
  walk(abs, '', { out: files, chain: [fs.realpathSync(abs)], skip: [], temps: [] });
  return dvcTreeMd5(files.relpaths.map((relpath) => ({ relpath, md5: dvcFileMd5(`${abs}/${relpath}`, name) })));
}

/** Python's json.dumps string form with ensure_ascii: everything outside ' '..'~' is escaped. */
function pyJsonString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** Python compares strings by code point; JavaScript's `<` by UTF-16 unit. They differ only beyond the BMP. */
function cmpCodePoints(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}
