import fs from 'node:fs';
import xxhash from 'xxhash-wasm';

type Hasher = Awaited<ReturnType<typeof xxhash>>;
let hasherPromise: Promise<Hasher> | undefined;

/** The wasm module is instantiated once per process, on first use. */
export function getHasher(): Promise<Hasher> {
  hasherPromise ??= xxhash();
  return hasherPromise;
}

export function toHex64(n: bigint): string {
  return n.toString(16).padStart(16, '0');
}

export async function hashString(text: string): Promise<string> {
  const h = await getHasher();
  return h.h64ToString(text);
}

const CHUNK = 4 * 1024 * 1024;
let sharedBuffer: Buffer | undefined;

/**
 * Hash a file's contents with xxh64, reading in fixed chunks into one reused
 * buffer: constant memory for any file size and no per-chunk allocation.
 * Reads are synchronous on purpose: for page-cached data the async round trip
 * costs more than the read, and hashing is CPU-bound either way.
 */
export async function hashFile(absPath: string): Promise<{ hash: string; size: number }> {
  const h = await getHasher();
  const state = h.create64();
  const buf = (sharedBuffer ??= Buffer.allocUnsafe(CHUNK));
  const fd = fs.openSync(absPath, 'r');
  let size = 0;
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      state.update(n === CHUNK ? buf : buf.subarray(0, n));
      size += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { hash: toHex64(state.digest()), size };
}

/**
 * Copy a file and hash the copy: how a restore verifies an object for little
 * more than the copy's own cost. A small file (one chunk) is read once,
 * hashed and written from that buffer; a larger one is copied by the kernel
 * (copy_file_range: measured 3-4× faster than a userland loop here) and the
 * copy, still in the page cache, is hashed. The copy gets `mode` (the cache's
 * objects are read-only, the user's copies are not).
 */
export async function copyFileHashing(src: string, dest: string, mode = 0o644): Promise<{ hash: string; size: number }> {
  const h = await getHasher();
  const buf = (sharedBuffer ??= Buffer.allocUnsafe(CHUNK));
  const inFd = fs.openSync(src, 'r');
  let n: number;
  try {
    n = fs.readSync(inFd, buf, 0, CHUNK, null);
    if (n < CHUNK) {
      const data = buf.subarray(0, n);
      const outFd = fs.openSync(dest, 'w', mode);
      try {
        for (let off = 0; off < n; ) off += fs.writeSync(outFd, data, off, n - off);
      } finally {
        fs.closeSync(outFd);
      }
      return { hash: toHex64(h.h64Raw(data)), size: n };
    }
  } finally {
    fs.closeSync(inFd);
  }
  fs.copyFileSync(src, dest);
  fs.chmodSync(dest, mode);
  return hashFile(dest);
}
