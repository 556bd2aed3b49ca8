/**
 * Where things live inside a cache directory, local or remote. The same keys
 * are used on every remote, so a remote is a mirror of the local cache.
 */

const HASH = /^[0-9a-f]{16}(\.dir)?$/;

/** A content hash as recorded in pipeline.lock: 16 hex digits, `.dir` for a directory manifest. */
export function isContentHash(h: string): boolean {
  return HASH.test(h);
}

export function isDirHash(h: string): boolean {
  return h.endsWith('.dir');
}

/** `files/xxh64/ab/cdef…`: two-level fan-out keeps directories small. */
export function objectKey(hash: string): string {
  if (!isContentHash(hash)) throw new Error(`not a content hash: '${hash}'`);
  return `files/xxh64/${hash.slice(0, 2)}/${hash.slice(2)}`;
}

export function hashOfObjectKey(key: string): string | undefined {
  const m = /^files\/xxh64\/([0-9a-f]{2})\/([0-9a-f]{14}(?:\.dir)?)$/.exec(key);
  return m ? m[1]! + m[2]! : undefined;
}

/** Run-cache entries are keyed by the stage fingerprint (command, dep hashes, params). */
export function runKey(fingerprint: string): string {
  if (!/^[0-9a-f]{16}$/.test(fingerprint)) throw new Error(`not a fingerprint: '${fingerprint}'`);
  return `runs/${fingerprint.slice(0, 2)}/${fingerprint}.json`;
}

export function fingerprintOfRunKey(key: string): string | undefined {
  const m = /^runs\/[0-9a-f]{2}\/([0-9a-f]{16})\.json$/.exec(key);
  return m?.[1];
}
