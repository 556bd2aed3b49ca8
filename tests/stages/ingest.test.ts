import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { md5OfBytes } from '../../stages/lib/data/checksum.js';
import { ingest, parseSource } from '../../stages/lib/data/ingest.js';
import { tempDir } from './fixtures.js';

const body = 'lead_id,lead_indicator\n1,0\n';
const md5 = md5OfBytes(Buffer.from(body));
let server: http.Server;
let base: string;
const dir = tempDir();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/data.csv') res.end(body);
    else if (req.url === '/slow') setTimeout(() => res.end(body), 2000);
    else {
      res.statusCode = 404;
      res.end('nope');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const HINT = /lockstep exp run -S ingest\.source=\.\.\/shared\/data\/raw_data\.csv/;

describe('ingest', () => {
  it('downloads over http and verifies the md5', async () => {
    const dest = path.join(dir, 'a', 'raw.csv');
    await ingest({ source: parseSource(`${base}/data.csv`, dir), md5, dest, timeoutMs: 5000 });
    expect(fs.readFileSync(dest, 'utf8')).toBe(body);
  });

  it('copies a local path relative to the repository root', async () => {
    fs.writeFileSync(path.join(dir, 'local.csv'), body);
    const dest = path.join(dir, 'b', 'raw.csv');
    expect(parseSource('local.csv', dir)).toEqual({ kind: 'file', path: path.join(dir, 'local.csv') });
    await ingest({ source: parseSource('local.csv', dir), md5: md5.toUpperCase(), dest, timeoutMs: 5000 });
    expect(fs.readFileSync(dest, 'utf8')).toBe(body);
  });

  it('data already at the destination with the right md5 is kept without fetching; a wrong file there is replaced', async () => {
    const dest = path.join(dir, 'd', 'raw.csv');
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, body);
    const kept = await ingest({ source: parseSource('http://127.0.0.1:9/unreachable.csv', dir), md5, dest, timeoutMs: 1000 });
    expect(kept).toEqual({ bytes: body.length, md5, reused: true });
    fs.writeFileSync(dest, 'stale');
    const fetched = await ingest({ source: parseSource(`${base}/data.csv`, dir), md5, dest, timeoutMs: 5000 });
    expect(fetched.reused).toBe(false);
    expect(fs.readFileSync(dest, 'utf8')).toBe(body);
    fs.writeFileSync(dest, 'stale');
    await expect(ingest({ source: parseSource('http://127.0.0.1:9/unreachable.csv', dir), md5, dest, timeoutMs: 1000 })).rejects.toThrow(/cannot download/);
    expect(fs.readFileSync(dest, 'utf8')).toBe('stale');
  });

  it('a wrong checksum, a 404, a dead host, a timeout and a missing file all say how to supply the file, and write nothing', async () => {
    const dest = path.join(dir, 'c', 'raw.csv');
    const attempt = (source: string, sum = md5, timeoutMs = 5000) => ingest({ source: parseSource(source, dir), md5: sum, dest, timeoutMs });
    await expect(attempt(`${base}/data.csv`, '0'.repeat(32))).rejects.toThrow(new RegExp(`has md5 ${md5}, expected 0{32}.*`, 's'));
    await expect(attempt(`${base}/data.csv`, '0'.repeat(32))).rejects.toThrow(HINT);
    await expect(attempt(`${base}/missing`)).rejects.toThrow(/HTTP 404/);
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await expect(attempt(`http://127.0.0.1:${deadPort}/raw.csv`)).rejects.toThrow(/cannot download .*ECONNREFUSED.*lockstep exp run -S/s);
    await expect(attempt(`${base}/slow`, md5, 200)).rejects.toThrow(/no answer within 0.2 s/);
    await expect(attempt('nowhere.csv')).rejects.toThrow(/cannot read .*nowhere\.csv: no such file\. Point ingest at a local copy/);
    expect(() => parseSource('ftp://x/y.csv', dir)).toThrow(/only http\(s\) URLs and local paths/);
    expect(fs.existsSync(dest)).toBe(false);
  });
});
