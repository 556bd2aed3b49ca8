import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { UserError } from './errors.js';
import { hashFile, hashString } from './hash/xxhash.js';
import { writeFileAtomic } from './fs-util.js';
import type { PathState } from './hash/tree.js';
import type { ObjectStore } from './cache/object-store.js';

/**
 * External dependencies: `https://…` (or `http://…`) and `s3://bucket/key`.
 * As in DVC, whether one changed is decided by what the server says about it
 * (HEAD: the ETag, else Last-Modified and size; on S3 the version id, else the
 * ETag) without downloading it. The content is fetched into the cache only
 * when a stage that depends on it is about to run.
 */
const TIMEOUT_MS = 20_000;

/** What the server says identifies this version of the object. */
interface RemoteVersion {
  readonly etag: string;
  readonly size: number;
}

function s3Parts(url: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/(.+)$/i.exec(url);
  if (!m) throw new UserError({ message: `'${url}' is not an S3 object URL (s3://bucket/key)` });
  return { bucket: m[1]!, key: m[2]! };
}

async function s3Client() {
  const sdk = await import('@aws-sdk/client-s3');
  // The SDK's own variables name an S3-compatible endpoint (MinIO, Ceph, a test server).
  const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  const client = new sdk.S3Client({
    region: process.env.AWS_REGION ?? 'us-east-1',
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
  });
  return { sdk, client };
}

function unreachable(url: string, why: string): UserError {
  return new UserError({ message: `external dep ${url}: ${why}` });
}

/** HEAD the object. Undefined when it does not exist (404); a UserError when the server cannot be asked. */
async function remoteVersion(url: string): Promise<RemoteVersion | undefined> {
  if (/^s3:/i.test(url)) {
    const { bucket, key } = s3Parts(url);
    const { sdk, client } = await s3Client();
    try {
      const r = await client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: AbortSignal.timeout(TIMEOUT_MS) });
      const id = r.VersionId && r.VersionId !== 'null' ? `version:${r.VersionId}` : r.ETag;
      if (!id) throw unreachable(url, 'S3 gave neither a version id nor an ETag');
      return { etag: id, size: r.ContentLength ?? 0 };
    } catch (e) {
      const err = e as { name?: string; $metadata?: { httpStatusCode?: number }; message?: string };
      if (e instanceof UserError) throw e;
      if (err.$metadata?.httpStatusCode === 404 || err.name === 'NotFound' || err.name === 'NoSuchKey') return undefined;
      throw unreachable(url, `${err.name ?? 'error'}${err.message ? `: ${err.message}` : ''}`);
    } finally {
      client.destroy();
    }
  }
  let res: Response;
  try {
    res = await fetch(url, { method: 'HEAD', redirect: 'follow', signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code;
    throw unreachable(url, `cannot be reached (${cause ?? (e as Error).message})`);
  }
  if (res.status === 404 || res.status === 410) return undefined;
  if (!res.ok) throw unreachable(url, `the server answered HTTP ${res.status}`);
  const size = Number(res.headers.get('content-length') ?? 0) || 0;
  const etag = res.headers.get('etag');
  const modified = res.headers.get('last-modified');
  // Weak and strong ETags both name a version; without one, Last-Modified and the size stand in, as DVC does.
  const id = etag ?? (modified ? `modified:${modified};size:${size}` : undefined);
  if (!id) throw unreachable(url, 'the server gives neither an ETag nor Last-Modified, so a change could not be seen');
  return { etag: id, size };
}

/** An external dep's state as the staleness check sees it: its hash stands for the server's version id. */
export async function observeExternal(url: string): Promise<PathState> {
  const v = await remoteVersion(url);
  if (!v) return { kind: 'missing' };
  return { kind: 'file', hash: await hashString(`${url}\0${v.etag}`), size: v.size, etag: v.etag };
}

/**
 * The dep's content as a local file: from the cache when this version was
 * fetched before, otherwise downloaded, hashed and admitted to the cache. A
 * version that changed between the check and the download is refused (the
 * stage would run on something else than what its lock entry will say).
 */
export async function fetchExternal(url: string, etag: string, store: ObjectStore, cacheDir: string): Promise<string> {
  const index = path.join(cacheDir, 'external', `${await hashString(`${url}\0${etag}`)}.json`);
  try {
    const known = JSON.parse(fs.readFileSync(index, 'utf8')) as { hash: string };
    if (store.has(known.hash)) return store.pathOf(known.hash);
  } catch {
    // not fetched yet
  }
  const tmp = store.tempPath();
  try {
    let got: string | undefined;
    if (/^s3:/i.test(url)) {
      const { bucket, key } = s3Parts(url);
      const { sdk, client } = await s3Client();
      try {
        const r = await client.send(
          new sdk.GetObjectCommand({ Bucket: bucket, Key: key, ...(etag.startsWith('version:') ? { VersionId: etag.slice(8) } : { IfMatch: etag }) }),
        );
        got = r.VersionId && r.VersionId !== 'null' ? `version:${r.VersionId}` : r.ETag;
        await pipeline(r.Body as Readable, fs.createWriteStream(tmp));
      } catch (e) {
        const err = e as { name?: string; message?: string };
        throw unreachable(url, `download failed: ${err.name ?? ''} ${err.message ?? ''}`.trim());
      } finally {
        client.destroy();
      }
    } else {
      let res: Response;
      try {
        res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(10 * TIMEOUT_MS) });
      } catch (e) {
        throw unreachable(url, `download failed (${(e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message})`);
      }
      if (!res.ok || !res.body) throw unreachable(url, `download failed: HTTP ${res.status}`);
      const modified = res.headers.get('last-modified');
      got = res.headers.get('etag') ?? (modified ? `modified:${modified};size:${Number(res.headers.get('content-length') ?? 0) || 0}` : undefined);
      await pipeline(Readable.fromWeb(res.body as never), fs.createWriteStream(tmp));
    }
    if (got !== etag) throw unreachable(url, `it changed while the pipeline ran (was ${etag}, now ${got ?? 'unknown'}); run again`);
    const { hash } = await hashFile(tmp);
    const problem = await store.admit(tmp, hash);
    if (problem) throw unreachable(url, problem);
    writeFileAtomic(index, JSON.stringify({ url, etag, hash }) + '\n', { durable: false });
    return store.pathOf(hash);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
