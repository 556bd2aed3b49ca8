import fs from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RemoteStore } from './types.js';
import { TransientError, withRetries } from './retry.js';
import { pool } from './pool.js';
import { networkReason, RemoteRefused, RemoteUnavailable } from './errors.js';

/**
 * A WebDAV-style HTTP remote (nginx's dav module, Apache mod_dav, most object
 * gateways): GET, HEAD, PUT, DELETE, MOVE and PROPFIND. An upload goes to a
 * temporary name and is MOVEd into place, so no reader ever sees a partial
 * object under its final name.
 */
/** Objects up to this size move as one buffer; larger ones stream. */
const SMALL = 4 << 20;

export class HttpRemote implements RemoteStore {
  private readonly base: string;
  private readonly headers: Record<string, string>;

  constructor(
    readonly name: string,
    url: string,
    auth?: { user: string; password: string },
  ) {
    this.base = url.replace(/\/+$/, '') + '/';
    this.headers = auth ? { authorization: `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}` } : {};
  }

  get description(): string {
    return this.base.replace(/\/\/[^@/]*@/, '//');
  }

  private url(key: string): string {
    return this.base + key.split('/').map(encodeURIComponent).join('/');
  }

  private async request(
    method: string,
    key: string,
    init: RequestInit & { headers?: Record<string, string> } = {},
    okStatuses = [200, 201, 204],
  ): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(this.url(key), { ...init, method, headers: { ...this.headers, ...init.headers } });
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      throw new RemoteUnavailable(this.name, this.description, networkReason(e));
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw new RemoteRefused(
        this.name,
        this.description,
        `HTTP ${res.status} ${res.statusText}${this.headers.authorization ? '' : ' (no user is configured)'}`,
      );
    }
    if (okStatuses.includes(res.status)) return res;
    await res.body?.cancel();
    const msg = `${method} ${key} on remote '${this.name}': HTTP ${res.status} ${res.statusText}`;
    if (res.status >= 500 || res.status === 429) throw new TransientError(msg);
    throw Object.assign(new Error(res.status === 404 ? `'${key}' is not on remote '${this.name}'` : msg), { status: res.status });
  }

  async existing(keys: readonly string[]): Promise<Map<string, number | undefined>> {
    const found = new Map<string, number | undefined>();
    await pool(keys, 16, async (key) => {
      const res = await withRetries(() => this.request('HEAD', key, {}, [200, 404]));
      const length = res.headers.get('content-length');
      if (res.status === 200) found.set(key, length === null ? undefined : Number(length));
    });
    return found;
  }

  /** PROPFIND with Depth 1, folder by folder (nginx does not allow Depth: infinity). */
  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    const basePath = new URL(this.base).pathname;
    const visit = async (dir: string): Promise<void> => {
      const res = await withRetries(() => this.request('PROPFIND', dir, { headers: { depth: '1' } }, [207, 404]));
      if (res.status === 404) return;
      const xml = await res.text();
      for (const m of xml.matchAll(/<(?:\w+:)?href>([^<]+)<\/(?:\w+:)?href>/g)) {
        const p = decodeURIComponent(new URL(m[1]!, this.base).pathname);
        if (!p.startsWith(basePath)) continue;
        const rel = p.slice(basePath.length);
        if (rel === dir || rel === `${dir}/` || rel === '') continue;
        if (rel.endsWith('/')) await visit(rel.replace(/\/$/, ''));
        else if (!/(^|\/)\.tmp-/.test(rel)) out.push(rel);
      }
    };
    await visit(prefix.replace(/\/$/, ''));
    return out;
  }

  async download(key: string, destFile: string, progress?: (bytes: number) => void, signal?: AbortSignal): Promise<void> {
    await withRetries(async () => {
      const res = await this.request('GET', key, { signal });
      const length = Number(res.headers.get('content-length') ?? NaN);
      if (length <= SMALL) {
        // Most objects are small: one buffer beats setting up a stream pipeline per file.
        const buf = Buffer.from(await res.arrayBuffer());
        await fs.promises.writeFile(destFile, buf);
        progress?.(buf.length);
        return;
      }
      await pipeline(Readable.fromWeb(res.body as never), counter(progress), fs.createWriteStream(destFile), { signal });
    });
  }

  async upload(key: string, srcFile: string, progress?: (bytes: number) => void, signal?: AbortSignal): Promise<void> {
    const slash = key.lastIndexOf('/');
    const tmpKey = `${key.slice(0, slash + 1)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
    const size = fs.statSync(srcFile).size;
    await withRetries(async () => {
      if (size <= SMALL) {
        const buf = await fs.promises.readFile(srcFile);
        await this.request('PUT', tmpKey, { body: buf, signal, headers: { 'content-length': String(size) } });
        progress?.(size);
        return;
      }
      const body = fs.createReadStream(srcFile).pipe(counter(progress));
      await this.request('PUT', tmpKey, {
        body: Readable.toWeb(body) as never,
        duplex: 'half',
        signal,
        headers: { 'content-length': String(size) },
      } as RequestInit & { headers: Record<string, string> });
    });
    try {
      await withRetries(() => this.request('MOVE', tmpKey, { signal, headers: { destination: this.url(key), overwrite: 'T' } }));
    } catch (e) {
      await this.request('DELETE', tmpKey, {}, [200, 204, 404]).catch(() => undefined);
      throw e;
    }
  }

  async remove(keys: readonly string[]): Promise<void> {
    for (const k of keys) await withRetries(() => this.request('DELETE', k, {}, [200, 204, 404]));
  }

  async close(): Promise<void> {}
}

function counter(progress?: (bytes: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      progress?.(chunk.length);
      cb(null, chunk);
    },
  });
}
