import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncWithWorkspace } from '../../stages/lib/registry/workspace-sync.js';
import { md5OfFile } from '../../stages/lib/data/checksum.js';
import { REPO } from '../helpers.js';
import { rawCsv, repoParams, syntheticRaw, tempDir } from '../stages/fixtures.js';
import { quickTrainParams, runPipeline } from '../stages/pipeline-run.js';
import { leadRecord, startServer, type Server } from '../serve/server.js';
import { nodeDebianImage, podman } from './images.js';

// The repository's Containerfile, built with a locally made BASE (Debian + this machine's node and npm),
// serving a small registry trained here on synthetic rows, mounted into the container.
let root: string;
let host: Server;
let image: string;
let containerUrl: string;
const name = `lockstep-test-service-${process.pid}`;
const tag = `lockstep-test-service:${process.pid}`;
let buildSeconds = 0;

function build(args: string[]): Promise<{ code: number; log: string }> {
  return new Promise((resolve) => {
    const child = spawn('podman', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    child.once('close', (code) => resolve({ code: code ?? -1, log }));
  });
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  root = tempDir('leads-image-');
  fs.writeFileSync(path.join(root, 'source.csv'), rawCsv(syntheticRaw(500, 5)));
  const params = { ...quickTrainParams(repoParams()), ingest: { source: 'source.csv', md5: md5OfFile(path.join(root, 'source.csv')) } };
  await runPipeline(root, params as never);
  await syncWithWorkspace(root); // what `leads registry list` does: the workspace's model goes to Staging
  const base = await nodeDebianImage();
  const t0 = Date.now();
  // The dependency stage keeps a tag, so its layers (the slow part: npm ci) are never dangling and
  // survive a `podman image prune`; a rebuild after a source change starts from them.
  const from = ['--build-arg', `BASE=${base}`, '-f', path.join(REPO, 'Containerfile'), REPO];
  const d = await build(['build', '--target', 'deps', '-t', `lockstep-test-service-deps:${base.split(':')[1]}`, ...from]);
  if (d.code !== 0) throw new Error(`the service image's dependencies did not build:\n${d.log.slice(-4000)}`);
  const b = await build(['build', '-t', tag, ...from]);
  buildSeconds = (Date.now() - t0) / 1000;
  if (b.code !== 0) throw new Error(`the service image did not build:\n${b.log.slice(-4000)}`);
  image = tag;
  host = await startServer(root, ['--quiet', '--stage', 'Staging']);
  const run = podman(['run', '-d', '--name', name, '-p', '127.0.0.1::8080', '-v', `${path.join(root, 'registry')}:/app/registry:ro`, image]);
  if (run.code !== 0) throw new Error(`podman run failed: ${run.stderr}`);
  const port = /:(\d+)\s*$/.exec(podman(['port', name, '8080']).stdout.trim())?.[1];
  containerUrl = `http://127.0.0.1:${port}`;
  await until('the container to serve', async () => ((await fetch(`${containerUrl}/health`)).ok ? true : undefined));
}, 900_000);

afterAll(async () => {
  await host?.stop();
  podman(['rm', '-f', name]);
  podman(['rmi', tag]);
  fs.rmSync(root, { recursive: true, force: true });
  process.stderr.write(`service image built in ${buildSeconds.toFixed(1)}s\n`);
});

async function both(method: string, route: string, body?: unknown): Promise<[unknown, unknown]> {
  const ask = async (base: string) => {
    const res = await fetch(`${base}${route}`, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as unknown };
  };
  return [await ask(host.url), await ask(containerUrl)];
}

describe('the service image', () => {
  it('answers /predict (one record, a batch, bad input) and /health exactly as leads serve does', async () => {
    const batch = syntheticRaw(40, 8).map((r) => ({
      purchases: r.purchases === '' ? null : Number(r.purchases),
      time_spent: Number(r.time_spent),
      n_visits: Number(r.n_visits),
      customer_group: Number(r.customer_group),
      onboarding: r.onboarding,
      source: 'signup',
    }));
    for (const [method, route, body] of [
      ['GET', '/health', undefined],
      ['POST', '/predict', leadRecord()],
      ['POST', '/predict', batch],
      ['POST', '/predict', leadRecord({ customer_group: 42 })],
    ] as const) {
      const [fromHost, fromImage] = await both(method, route, body);
      expect(fromImage).toEqual(fromHost);
    }
    const [single] = await both('POST', '/predict', leadRecord());
    expect(single).toMatchObject({ status: 200, body: { model_version: 1 } });
  });

  it('stops gracefully on SIGTERM (podman stop): exit code 0 within a second or two, not the 10 s kill', async () => {
    const t0 = Date.now();
    const stop = podman(['stop', '--time', '10', name]);
    const took = Date.now() - t0;
    expect(stop.code, stop.stderr).toBe(0);
    expect(took).toBeLessThan(5000);
    expect(podman(['inspect', '--format', '{{.State.ExitCode}}', name]).stdout.trim()).toBe('0');
    expect(podman(['logs', name]).stderr).toContain('leads: SIGTERM: finishing in-flight requests');
  });
});
