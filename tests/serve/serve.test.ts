import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { md5OfFile } from '../../stages/lib/data/checksum.js';
import { parseCsv, formatCsv } from '../../stages/lib/data/csv.js';
import { RAW_COLUMNS } from '../../stages/lib/data/schema.js';
import { rawCsv, repoParams, syntheticRaw, tempDir } from '../stages/fixtures.js';
import { quickTrainParams, runPipeline } from '../stages/pipeline-run.js';
import { LEADS, leadRecord, startServer, type Server } from './server.js';

let root: string;
let server: Server;
let params: Record<string, unknown>;

async function post(
  body: unknown,
  raw?: string,
  headers: Record<string, string> = { 'content-type': 'application/json' },
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${server.url}/predict`, { method: 'POST', headers, body: raw ?? JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function health(): Promise<{ status: string; version: number }> {
  return (await (await fetch(`${server.url}/health`)).json()) as { status: string; version: number };
}

/** Train again with another split seed: the workspace selects a new model, registered (in Staging) when read. */
async function registerNewVersion(seed: number): Promise<void> {
  await runPipeline(root, { ...params, split: { ...(params.split as object), seed } } as never);
}

beforeAll(async () => {
  root = tempDir('leads-serve-');
  fs.writeFileSync(path.join(root, 'source.csv'), rawCsv(syntheticRaw(700, 21)));
  params = { ...quickTrainParams(repoParams()), ingest: { source: 'source.csv', md5: md5OfFile(path.join(root, 'source.csv')) } };
  await runPipeline(root, params as never);
  server = await startServer(root, ['--quiet']);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('leads serve', () => {
  it('answers a single record and a batch with prediction, probability and model version', async () => {
    const one = await post(leadRecord());
    expect(one.status).toBe(200);
    expect(one.json.model_version).toBe(1);
    expect([0, 1]).toContain(one.json.prediction);
    expect(one.json.probability).toBeGreaterThanOrEqual(0);
    expect(one.json.probability).toBeLessThanOrEqual(1);
    const batch = await post([
      leadRecord(),
      leadRecord({ purchases: 0, n_visits: 1, customer_group: 2, onboarding: 'False' }),
      leadRecord({ purchases: null }),
    ]);
    expect(batch.status).toBe(200);
    expect((batch.json.predictions as unknown[]).length).toBe(3);
  });

  it('gives exactly the predictions of leads predict for the same rows (one code path)', async () => {
    const rows = syntheticRaw(60, 99).filter((r) => r.source === 'signup');
    const file = path.join(root, 'batch.csv');
    fs.writeFileSync(file, formatCsv(RAW_COLUMNS, rows));
    const cli = spawnSync(process.execPath, [LEADS, 'predict', '--input', file], { cwd: root, encoding: 'utf8' });
    expect(cli.status, cli.stderr).toBe(0);
    const fromCli = parseCsv(cli.stdout).rows.map((r) => [Number(r.prediction), Number(r.probability)]);
    // The service takes JSON: numbers as numbers, an empty cell as null.
    const json = rows.map((r) =>
      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, ['purchases', 'time_spent', 'n_visits'].includes(k) ? (v === '' ? null : Number(v)) : v])),
    );
    const served = await post(json);
    expect(served.status, JSON.stringify(served.json)).toBe(200);
    const fromService = (served.json.predictions as { prediction: number; probability: number }[]).map((p) => [p.prediction, p.probability]);
    expect(fromService).toEqual(fromCli);
  });

  it('answers every kind of bad input with a clear 400 (or 413) naming the field, and stays healthy', async () => {
    const cases: [unknown, string | undefined, number, RegExp][] = [
      [leadRecord({ purchases: 'many' }), undefined, 400, /"field":"purchases","message":"must be number \(or null\), got \\"many\\""/],
      [leadRecord({ customer_group: 42 }), undefined, 400, /"field":"customer_group","message":"42 is not a known value \(known: 1, 2, 3, 4, 5, 6, 7, 8, 9\)"/],
      [leadRecord({ onboarding: 'maybe' }), undefined, 400, /"field":"onboarding","message":"\\"maybe\\" is not a known value/],
      [(({ n_visits: _n, ...r }) => r)(leadRecord()), undefined, 400, /"field":"n_visits","message":"is required"/],
      [leadRecord({ colour: 'red' }), undefined, 400, /"field":"colour","message":"is not a lead field"/],
      [leadRecord({ source: 'organic' }), undefined, 400, /"field":"source","message":"\\"organic\\" is not a known value \(known: signup\)"/],
      [[leadRecord(), leadRecord({ time_spent: true })], undefined, 400, /"record":1,"field":"time_spent"/],
      [[], undefined, 400, /the batch is empty/],
      ['a string', undefined, 400, /a record must be a JSON object, got string/],
      [undefined, '{"purchases": 3,', 400, /malformed JSON/],
      [undefined, '', 400, /the request body is empty/],
      [Array.from({ length: 1001 }, () => leadRecord()), undefined, 400, /a batch holds at most 1000 records, got 1001/],
      [undefined, JSON.stringify(Array.from({ length: 4000 }, () => leadRecord())), 413, /larger than the 262144 bytes allowed/],
    ];
    for (const [body, raw, status, pattern] of cases) {
      const r = await post(body, raw);
      const text = JSON.stringify(r.json);
      expect(r.status, text).toBe(status);
      expect(text).toMatch(pattern);
      expect(text).not.toMatch(/\bat .+:\d+/); // no stack trace
    }
    const wrongType = await post(undefined, '<lead purchases="3"/>', { 'content-type': 'application/xml' });
    expect(wrongType.status).toBe(415);
    expect(JSON.stringify(wrongType.json)).toMatch(/send JSON/);
    expect(await health()).toEqual({ status: 'ok', version: 1 });
    expect((await post(leadRecord())).status).toBe(200);
  });

  it('GET /model describes the version being served', async () => {
    const m = (await (await fetch(`${server.url}/model`)).json()) as Record<string, unknown>;
    expect(m).toMatchObject({ version: 1, stage: 'Staging', following: "the workspace's selected model" });
    expect((m.metrics as { test: { accuracy: number } }).test.accuracy).toBeGreaterThan(0.5);
    expect(m.data_checksum).toMatch(/^[0-9a-f]{32}$/);
  });

  it('POST /reload under load picks up a newly promoted version and loses no request; SIGHUP does the same', async () => {
    let stop = false;
    const seen: number[] = [];
    const failures: string[] = [];
    const worker = async () => {
      while (!stop) {
        try {
          const r = await post(leadRecord());
          if (r.status !== 200) failures.push(`${r.status} ${JSON.stringify(r.json)}`);
          else seen.push(r.json.model_version as number);
        } catch (e) {
          failures.push(String(e));
        }
      }
    };
    const load = Array.from({ length: 16 }, worker);
    await new Promise((r) => setTimeout(r, 300));
    await registerNewVersion(7); // version 2 → Staging, version 1 archived, while requests flow
    const reload = (await (await fetch(`${server.url}/reload`, { method: 'POST' })).json()) as { reloaded: boolean; version: number };
    expect(reload).toEqual({ reloaded: true, version: 2 });
    const afterReload = seen.length;
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(load);
    expect(failures).toEqual([]);
    expect(seen.length).toBeGreaterThan(50);
    expect(seen).toContain(1);
    expect(seen.slice(afterReload + 16)).not.toContain(1); // after the swap (and the requests already in flight), only version 2
    expect(seen.at(-1)).toBe(2);

    await registerNewVersion(8); // version 3
    const listed = spawnSync(process.execPath, [LEADS, 'registry', 'list'], { cwd: root, encoding: 'utf8' }).stdout;
    expect(listed).toMatch(/^3\s.*Staging/m);
    server.child.kill('SIGHUP');
    for (let i = 0; i < 200 && (await health()).version !== 3; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await health(), server.stderr()).toEqual({ status: 'ok', version: 3 });
    expect(server.stderr()).toMatch(/reload: now version 3/);
    const again = (await (await fetch(`${server.url}/reload`, { method: 'POST' })).json()) as { reloaded: boolean };
    expect(again.reloaded).toBe(false);
  }, 60_000);

  it('refuses to start without a model to serve, and on bad options, with a clear message', async () => {
    await expect(startServer(root, ['--stage', 'Production'])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/leads: error: no model version in Production/),
    });
    await expect(startServer(root, ['--version', '99'])).rejects.toMatchObject({ code: 1 });
    await expect(startServer(root, ['--port', 'eighty'])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--port must be a whole number from 0 to 65535, got 'eighty'/),
    });
    const taken = new URL(server.url).port;
    await expect(startServer(root, ['--port', taken])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/),
    });
  }, 60_000);

  it('a client that stops mid-body gets 408 after --timeout-ms, and the server stays healthy', async () => {
    const slow = await startServer(root, ['--quiet', '--timeout-ms', '500']);
    try {
      const { hostname, port } = new URL(slow.url);
      const t0 = Date.now();
      const answer = await new Promise<string>((resolve, reject) => {
        const sock = net.connect(Number(port), hostname, () => {
          sock.write('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"purch');
        });
        let data = '';
        sock.on('data', (d) => void (data += d.toString()));
        sock.on('close', () => resolve(data));
        sock.on('error', reject);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect((await fetch(`${slow.url}/health`)).status).toBe(200);
    } finally {
      await slow.stop();
    }
  });

  it('a reload that finds nothing to load answers 409 and keeps serving; /model shows the stage the version has now', async () => {
    const staging = await startServer(root, ['--quiet', '--stage', 'Staging']);
    try {
      expect((await (await fetch(`${staging.url}/model`)).json()) as object).toMatchObject({ version: 3, stage: 'Staging', following: 'the Staging stage' });
      const promoted = spawnSync(process.execPath, [LEADS, 'registry', 'promote', '3', '--to', 'Production'], { cwd: root, encoding: 'utf8' });
      expect(promoted.status, promoted.stderr).toBe(0); // Staging is now empty
      // Both servers still hold version 3, and both say where it is now.
      for (const s of [server, staging]) expect((await (await fetch(`${s.url}/model`)).json()) as object).toMatchObject({ version: 3, stage: 'Production' });
      const r = await fetch(`${staging.url}/reload`, { method: 'POST' });
      expect(r.status).toBe(409);
      expect(((await r.json()) as { error: string }).error).toMatch(/^reload failed, still serving version 3: no model version in Staging/);
      expect((await (await fetch(`${staging.url}/health`)).json()) as object).toEqual({ status: 'ok', version: 3 });
      const res = await fetch(`${staging.url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(leadRecord()),
      });
      expect(((await res.json()) as { model_version: number }).model_version).toBe(3);
    } finally {
      await staging.stop();
      await registerNewVersion(9); // the workspace moves on again, for the tests after this one
    }
  });

  it('a client mistake is never a 500: prototype-named fields, wrong content type, wrong method, unknown path', async () => {
    for (const field of ['constructor', 'toString', 'hasOwnProperty', 'valueOf', '__proto__']) {
      const r = await post(
        undefined,
        `{"purchases": 3, "time_spent": 1, "n_visits": 2, "customer_group": 6, "onboarding": "True", "source": "signup", "${field}": 1}`,
      );
      expect([r.status, r.json.problems], field).toEqual([400, [{ record: 0, field, message: 'is not a lead field' }]]);
    }
    const missing = await post(undefined, '{"__proto__": {"purchases": 1}}');
    expect(missing.status).toBe(400);
    expect((missing.json.problems as { field: string }[]).map((p) => p.field)).toEqual(expect.arrayContaining(['purchases', 'source', '__proto__']));
    const text = await post(undefined, 'purchases=3', { 'content-type': 'text/plain' });
    expect([text.status, text.json.error]).toEqual([415, 'send JSON (content-type: application/json)']);
    const form = await post(undefined, 'purchases=3', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(form.status).toBe(415);
    const get = await fetch(`${server.url}/predict`);
    expect([get.status, get.headers.get('allow')]).toEqual([405, 'POST']);
    expect(((await get.json()) as { error: string }).error).toBe('GET is not allowed on /predict; use POST');
    const del = await fetch(`${server.url}/model`, { method: 'DELETE' });
    expect(del.status).toBe(405);
    const nowhere = await fetch(`${server.url}/predictions`);
    expect([nowhere.status, ((await nowhere.json()) as { error: string }).error]).toEqual([404, 'no such endpoint: GET /predictions (see GET /docs)']);
    expect(await health()).toMatchObject({ status: 'ok' });
  });

  it('publishes its API: /openapi.json (the schema it validates with) and a readable /docs page', async () => {
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
      components: { schemas: { LeadRecord: { required: string[]; properties: Record<string, unknown>; additionalProperties: boolean } } };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual(['/docs', '/health', '/model', '/openapi.json', '/predict', '/reload']);
    expect(Object.keys(doc.paths['/predict']!.post!.responses).sort()).toEqual(['200', '400', '408', '413', '415']);
    const rec = doc.components.schemas.LeadRecord;
    expect(rec.additionalProperties).toBe(false);
    expect(rec.required).toEqual(['purchases', 'time_spent', 'n_visits', 'customer_group', 'onboarding', 'source']);
    // What the document says is what the server does: a record missing a required field is refused by name.
    const r = await post({ ...leadRecord(), time_spent: undefined });
    expect(r.json.problems).toEqual([{ record: 0, field: 'time_spent', message: 'is required' }]);
    const docs = await fetch(`${server.url}/docs`);
    expect(docs.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await docs.text();
    expect(html).toContain('POST /predict');
    expect(html).toContain('<code>customer_group</code>');
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('SIGTERM closes gracefully with exit code 0', async () => {
    const s = await startServer(root, ['--quiet']);
    expect(await s.stop('SIGTERM')).toBe(0);
  });
});
