import fs from 'node:fs';
import xxhash from 'xxhash-wasm';
import { UserError } from '../errors.js';

type Hasher = Awaited<ReturnType<typeof xxhash>>;
let hasherPromise: Promise<Hasher> | undefined;

/** The wasm module is instantiated once per process, on first use. */
export function getHasher(): Promise<Hasher> {
  hasherPromise ??= xxhash();
  return hasherPromise;
}

function toHex64(n: bigint): string {
  return n.toString(16).padStart(16, '0');
}

export async function hashString(text: string): Promise<string> {
  const h = await getHasher();
  return h.h64ToString(text);
}

/** The name the cache gives these bytes: xxh64 in hex, as pipeline.lock records it. */
export async function contentHash(bytes: Uint8Array | string): Promise<string> {
  const h = await getHasher();
  return toHex64(h.h64Raw(typeof bytes === 'string' ? Buffer.from(bytes) : bytes));
}

const CHUNK = 4 * 1024 * 1024;
let sharedBuffer: Buffer | undefined;

/** Thrown out of a hash that was stopped by `abortHashing` (SIGINT/SIGTERM). */
export class HashAborted extends Error {
  constructor() {
    super('interrupted while hashing');
  }
}

let aborted = false;

/** Make every hash in progress (and every later one) stop at its next chunk. */
export function abortHashing(): void {
  aborted = true;
}

let lastYield = performance.now();

/**
 * Hashing is synchronous work chained by awaits that never reach the event
 * loop; a folder of many files could keep signal handlers waiting for
 * seconds. Between files, when `yieldDue()` (a synchronous check, so the
 * common path costs no await): let the loop run, and stop if a signal asked to.
 */
export function yieldDue(): boolean {
  return aborted || performance.now() - lastYield >= 50;
}

export async function yieldForSignals(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  lastYield = performance.now();
  if (aborted) throw new HashAborted();
}

/**
 * Hash a file's contents with xxh64, reading in fixed chunks into one reused
 * buffer: constant memory for any file size and no per-chunk allocation.
 * Reads are synchronous on purpose: for page-cached data the async round trip
 * costs more than the read, and hashing is CPU-bound either way.
 */
export async function hashFile(absPath: string): Promise<{ hash: string; size: number }> {
  const h = await getHasher();
  if (aborted) throw new HashAborted();
  const state = h.create64();
  // O_NONBLOCK: should a FIFO slip past the callers' checks (swapped in after its stat), open returns
  // at once instead of blocking the whole process, signal handlers included, until a writer comes.
  const fd = fs.openSync(absPath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  let size = 0;
  try {
    if (!fs.fstatSync(fd).isFile()) throw new UserError({ message: `'${absPath}' is not a regular file; it cannot be hashed` });
    // One buffer for every hash: each chunk is read and consumed synchronously, so hashes that
    // interleave at the yields below never see each other's bytes.
    const buf = (sharedBuffer ??= Buffer.allocUnsafe(CHUNK));
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      state.update(n === CHUNK ? buf : buf.subarray(0, n));
      size += n;
      if (n === CHUNK) {
        // A big file: let the event loop run between chunks, so Ctrl-C and SIGTERM are heard mid-hash.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (aborted) throw new HashAborted();
      }
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
        for (let off = 0; off < n;) off += fs.writeSync(outFd, data, off, n - off);
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
