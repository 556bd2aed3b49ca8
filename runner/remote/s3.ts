import fs from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import type { RemoteStore } from './types.js';
import { withRetries } from './retry.js';
import { pool } from './pool.js';
import { networkReason, RemoteRefused, RemoteUnavailable } from './errors.js';
import { UserError } from '../errors.js';

export interface S3Options {
  readonly endpoint?: string;
  readonly region?: string;
  readonly forcePathStyle?: boolean;
}

/**
 * An S3 (or S3-compatible) remote through the official AWS SDK. Credentials
 * come from the SDK's usual chain (environment, profile, instance role), never
 * from the committed config. PutObject is atomic: an object is visible whole
 * or not at all.
 */
export class S3Remote implements RemoteStore {
  private readonly bucket: string;
  private readonly prefix: string;

  private constructor(
    readonly name: string,
    where: { readonly bucket: string; readonly prefix: string },
    private readonly client: S3Client,
    private readonly sdk: typeof import('@aws-sdk/client-s3'),
  ) {
    this.bucket = where.bucket;
    this.prefix = where.prefix;
  }

  static async open(name: string, url: string, opts: S3Options): Promise<S3Remote> {
    const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
    if (!m) throw new UserError({ message: `remote '${name}': an S3 URL looks like s3://bucket/prefix, got '${url}'` });
    const sdk = await import('@aws-sdk/client-s3');
    const client = new sdk.S3Client({
      region: opts.region ?? process.env.AWS_REGION ?? 'us-east-1',
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? !!opts.endpoint,
      // Checksums only where S3 requires them: S3-compatible servers often reject the newer headers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 4,
    });
    return new S3Remote(name, { bucket: m[1]!, prefix: m[2]!.replace(/\/+$/, '') }, client, sdk);
  }

  get description(): string {
    return `s3://${this.bucket}/${this.prefix}`;
  }

  /** SDK failures in the remote's terms: unreachable, refused, or (404s, other statuses) as they are. */
  private async send<T>(command: unknown, signal?: AbortSignal): Promise<T> {
    try {
      return (await this.client.send(command as never, { abortSignal: signal })) as T;
    } catch (e) {
      const err = e as { name?: string; $metadata?: { httpStatusCode?: number }; message?: string };
      const status = err.$metadata?.httpStatusCode;
      if (err.name === 'AbortError') throw e;
      if (status === 403 || status === 401 || err.name === 'CredentialsProviderError')
        throw new RemoteRefused(this.name, this.description, `${err.name ?? 'denied'}: ${err.message ?? ''}`.trim());
      if (status === undefined) throw new RemoteUnavailable(this.name, this.description, networkReason(e));
      throw e;
    }
  }

  private k(key: string): string {
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  async existing(keys: readonly string[]): Promise<Map<string, number | undefined>> {
    const found = new Map<string, number | undefined>();
    await pool(keys, 16, async (key) => {
      try {
        const head = await this.send<{ ContentLength?: number }>(new this.sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.k(key) }));
        found.set(key, head.ContentLength);
      } catch (e) {
        const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (status !== 404) throw e;
      }
    });
    return found;
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.send<import('@aws-sdk/client-s3').ListObjectsV2CommandOutput>(
        new this.sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.k(prefix), ContinuationToken: token }),
      );
      for (const o of r.Contents ?? []) if (o.Key) out.push(this.prefix ? o.Key.slice(this.prefix.length + 1) : o.Key);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async download(key: string, destFile: string, progress?: (bytes: number) => void, signal?: AbortSignal): Promise<void> {
    await withRetries(async () => {
      let r;
      try {
        r = await this.send<import('@aws-sdk/client-s3').GetObjectCommandOutput>(
          new this.sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.k(key) }),
          signal,
        );
      } catch (e) {
        if ((e as { name?: string }).name === 'NoSuchKey') throw new Error(`'${key}' is not on remote '${this.name}'`);
        throw e;
      }
      await pipeline(r.Body as Readable, counter(progress), fs.createWriteStream(destFile), { signal });
    });
  }

  async upload(key: string, srcFile: string, progress?: (bytes: number) => void, signal?: AbortSignal): Promise<void> {
    const size = fs.statSync(srcFile).size;
    await withRetries(() =>
      this.send(
        new this.sdk.PutObjectCommand({
          Bucket: this.bucket,
          Key: this.k(key),
          Body: fs.createReadStream(srcFile).pipe(counter(progress)),
          ContentLength: size,
        }),
        signal,
      ),
    );
  }

  async remove(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000).map((k) => ({ Key: this.k(k) }));
      await this.send(new this.sdk.DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch } }));
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

function counter(progress?: (bytes: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      progress?.(chunk.length);
      cb(null, chunk);
    },
  });
}
