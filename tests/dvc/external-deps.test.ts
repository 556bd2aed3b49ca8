import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { TempRepo } from '../helpers.js';
import { freePort, startS3, type RunningServer } from '../../bench/servers.js';

let repo: TempRepo;
afterEach(() => repo?.cleanup());

/** A file server on 127.0.0.1 that answers HEAD and GET like a CDN: ETag or Last-Modified, counted. */
const files = new Map<string, { body: string; headers: 'etag' | 'modified' | 'none' }>();
const hits = { head: 0, get: 0 };
let server: http.Server;
let base: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const f = files.get(req.url ?? '');
    if (!f) {
      res.writeHead(404).end();
      return;
    }
    const headers: Record<string, string | number> = { 'content-type': 'text/csv', 'content-length': Buffer.byteLength(f.body) };
    if (f.headers === 'etag') headers.etag = `"${crypto.createHash('md5').update(f.body).digest('hex')}"`;
    if (f.headers === 'modified') headers['last-modified'] = new Date(1_700_000_000_000 + f.body.length * 1000).toUTCString();
    if (req.method === 'HEAD') hits.head++;
    else hits.get++;
    res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : f.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const csv = (n: number) => 'id,value\n' + Array.from({ length: n }, (_, i) => `${i},${i * i}`).join('\n') + '\n';

// The stage reads the fetched copy Lockstep hands it, as a DVC stage would read its own download.
const COUNT = `const fs = require('fs');
const file = process.env.LOCKSTEP_EXTERNAL_DEP;
const rows = fs.readFileSync(file, 'utf8').trim().split('\\n').length - 1;
fs.writeFileSync('rows.txt', String(rows));
`;

function pipeline(url: string): string {
  return `stages:\n  count:\n    cmd: node count.js\n    deps:\n      - ${url}\n      - count.js\n    outs: [rows.txt]\n`;
}

type Lock = { stages: { count: { deps: { path: string; xxh64: string; size: number; etag?: string }[] } } };

describe('https:// external deps', () => {
  it('checked by ETag with HEAD only; downloaded into the cache only when the stage runs; recorded in the lock', async () => {
    files.set('/data.csv', { body: csv(5), headers: 'etag' });
    repo = new TempRepo({ 'pipeline.yaml': pipeline(`${base}/data.csv`), 'count.js': COUNT });
    hits.get = 0;
    let r = await repo.run(['repro']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(repo.read('rows.txt')).toBe('5');
    expect(hits.get).toBe(1);
    const dep = (YAML.parse(repo.read('pipeline.lock')) as Lock).stages.count.deps[0]!;
    expect(dep).toMatchObject({ path: `${base}/data.csv`, etag: `"${crypto.createHash('md5').update(csv(5)).digest('hex')}"`, size: csv(5).length });

    const heads = hits.head;
    r = await repo.run(['repro']);
    expect(r.stdout).toContain('0 ran, 1 up to date');
    expect(hits.get).toBe(1); // a no-op never downloads
    expect(hits.head).toBe(heads + 1);
    expect((await repo.run(['status'])).stdout).toBe('Pipeline is up to date.');

    files.set('/data.csv', { body: csv(9), headers: 'etag' });
    expect((await repo.run(['status'])).stdout).toBe(`count:\n    dep changed: ${base}/data.csv`);
    r = await repo.run(['repro']);
    expect(r.code).toBe(0);
    expect(repo.read('rows.txt')).toBe('9');
    expect(hits.get).toBe(2);

    // back to the first version: the run-cache knows that ETag, so nothing is downloaded or run
    files.set('/data.csv', { body: csv(5), headers: 'etag' });
    r = await repo.run(['repro']);
    expect(r.stdout).toContain('restored from run-cache');
    expect(repo.read('rows.txt')).toBe('5');
    expect(hits.get).toBe(2);
  });

  it('a TypeScript stage module finds the fetched copy through ctx.resolve(url)', async () => {
    files.set('/mod.csv', { body: csv(6), headers: 'etag' });
    const url = `${base}/mod.csv`;
    repo = new TempRepo({
      'pipeline.yaml': `stages:\n  count:\n    module: count.ts\n    deps: [${url}, count.ts]\n    outs: [rows.txt]\n`,
      'count.ts': `import fs from 'node:fs';
export default function (ctx: { deps: string[]; resolve(p: string): string }) {
  const file = ctx.resolve(ctx.deps[0]!);
  fs.writeFileSync('rows.txt', String(fs.readFileSync(file, 'utf8').trim().split('\\n').length - 1) + ' ' + ctx.deps[0]);
}
`,
    });
    const r = await repo.run(['repro']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(repo.read('rows.txt')).toBe(`6 ${url}`);
  });

  it('Last-Modified stands in for a missing ETag; a server with neither, a 404 and an unreachable one are named', async () => {
    files.set('/lm.csv', { body: csv(3), headers: 'modified' });
    repo = new TempRepo({ 'pipeline.yaml': pipeline(`${base}/lm.csv`), 'count.js': COUNT });
    expect((await repo.run(['repro'])).code).toBe(0);
    expect((YAML.parse(repo.read('pipeline.lock')) as Lock).stages.count.deps[0]!.etag).toMatch(/^modified:.*GMT;size:\d+$/);
    files.set('/lm.csv', { body: csv(4), headers: 'modified' });
    expect((await repo.run(['status'])).stdout).toContain(`dep changed: ${base}/lm.csv`);

    files.set('/bare.csv', { body: csv(3), headers: 'none' });
    repo.write({ 'pipeline.yaml': pipeline(`${base}/bare.csv`) });
    let r = await repo.run(['status']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error: external dep ${base}/bare.csv: the server gives neither an ETag nor Last-Modified, so a change could not be seen`);

    repo.write({ 'pipeline.yaml': pipeline(`${base}/gone.csv`) });
    r = await repo.run(['status']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`dep missing: ${base}/gone.csv`);
    r = await repo.run(['repro']);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain(`dep '${base}/gone.csv' does not exist`);

    const closed = await freePort(); // nothing listens there
    repo.write({ 'pipeline.yaml': pipeline(`http://127.0.0.1:${closed}/data.csv`) });
    r = await repo.run(['status']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error: external dep http://127.0.0.1:${closed}/data.csv: cannot be reached (ECONNREFUSED)`);

    repo.write({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo\n    deps: [ftp://example.com/x.csv]\n    outs: [https://example.com/out.csv]\n' });
    r = await repo.run(['status']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("pipeline.yaml:4:12: error: external dep 'ftp://example.com/x.csv': only https://, http:// and s3:// URLs are supported");
    expect(r.stderr).toContain("pipeline.yaml:5:12: error: 'https://example.com/out.csv': external outputs (URLs) are not supported");
  });
});

describe('s3:// external deps', () => {
  let s3: RunningServer;
  beforeAll(async () => {
    s3 = await startS3();
  }, 60_000);
  afterAll(() => s3?.stop());

  async function put(key: string, body: string): Promise<void> {
    const sdk = await import('@aws-sdk/client-s3');
    const client = new sdk.S3Client({
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    await client.send(new sdk.PutObjectCommand({ Bucket: 'lockstep', Key: key, Body: body }));
    client.destroy();
  }

  it("checked by the object's ETag (HEAD), fetched when the stage runs, rerun when the object changes", async () => {
    await put('raw/data.csv', csv(7));
    repo = new TempRepo({ 'pipeline.yaml': pipeline('s3://lockstep/raw/data.csv'), 'count.js': COUNT });
    const env = { ...s3.env, AWS_ENDPOINT_URL: s3.endpoint! };
    let r = await repo.run(['repro'], { env });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(repo.read('rows.txt')).toBe('7');
    expect((YAML.parse(repo.read('pipeline.lock')) as Lock).stages.count.deps[0]).toMatchObject({
      path: 's3://lockstep/raw/data.csv',
      etag: `"${crypto.createHash('md5').update(csv(7)).digest('hex')}"`,
      size: csv(7).length,
    });
    expect((await repo.run(['status'], { env })).stdout).toBe('Pipeline is up to date.');
    await put('raw/data.csv', csv(2));
    expect((await repo.run(['status'], { env })).stdout).toBe('count:\n    dep changed: s3://lockstep/raw/data.csv');
    r = await repo.run(['repro'], { env });
    expect(r.code).toBe(0);
    expect(repo.read('rows.txt')).toBe('2');
    repo.write({ 'pipeline.yaml': pipeline('s3://lockstep/raw/none.csv') });
    expect((await repo.run(['status'], { env })).stdout).toContain('dep missing: s3://lockstep/raw/none.csv');
  }, 60_000);
});
