import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * md5 as DVC computes it, only to read a DVC repository's `.dvc` files: our
 * own cache keys are xxh64. A file is the md5 of its bytes; a folder is the
 * md5 of its sorted `[{"md5": …, "relpath": …}, …]` listing serialised as
 * Python's json.dumps writes it, suffixed `.dir`.
 */
export function md5File(abs: string): string {
  const h = crypto.createHash('md5');
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = fs.openSync(abs, 'r');
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(n === buf.length ? buf : buf.subarray(0, n));
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

/** md5 of a path as DVC records it; undefined when it does not exist. */
export function md5Path(abs: string): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    return undefined;
  }
  if (!st.isDirectory()) return md5File(abs);
  // DVC sorts by path components, which for '/'-joined paths is the same as comparing the component tuples.
  const files = filesUnder(abs).sort((a, b) => {
    const x = a.split('/');
    const y = b.split('/');
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
    return x.length - y.length;
  });
  const listing = '[' + files.map((f) => `{"md5": ${JSON.stringify(md5File(path.join(abs, f)))}, "relpath": ${JSON.stringify(f)}}`).join(', ') + ']';
  return crypto.createHash('md5').update(listing).digest('hex') + '.dir';
}
