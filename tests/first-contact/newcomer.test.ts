import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freshClone, LOCKSTEP, REPO, SHARED_DATA } from '../helpers.js';

/**
 * The first five minutes of a new user, played for real: a fresh clone, the data put where the pipeline
 * keeps it (the clone has no internet to download it from the URL in params.yaml), `lockstep repro` with the
 * committed lock, then `leads predict` and `leads serve` with no flag but the input.
 */
const LEADS = path.join(REPO, 'bin', 'leads.js');
const RAW = path.join(SHARED_DATA, 'raw_data.csv');
const X = path.join(SHARED_DATA, 'validator', 'X_test.csv');
const Y = path.join(SHARED_DATA, 'validator', 'y_test.csv');

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function run(bin: string, cwd: string, args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('a newcomer on a fresh clone', () => {
  it('repro with the committed lock, then leads predict and leads serve work with no flag but the input', async () => {
    if (!fs.existsSync(RAW)) throw new Error(`the real data is needed at ${RAW}`);
    const dir = freshClone('lockstep-newcomer-');
    dirs.push(dir);
    fs.mkdirSync(path.join(dir, 'data/raw'), { recursive: true });
    fs.copyFileSync(RAW, path.join(dir, 'data/raw/raw_data.csv'));

    const repro = run(LOCKSTEP, dir, ['repro']);
    expect(repro.code, repro.stdout + repro.stderr).toBe(0);
    // ingest keeps the data that is there (its md5 matches); select is cut off: its committed output is what
    // the retrained models give. Neither matters to what follows.
    expect(repro.stdout).toMatch(/select/);
    expect(run(LOCKSTEP, dir, ['status']).stdout).toContain('Pipeline is up to date.');

    // predict: no --workspace, no --stage: the model the workspace's select names, registered on first use.
    const out = path.join(dir, 'predictions.csv');
    const pred = run(LEADS, dir, ['predict', '--features', '--input', X, '--output', out]);
    expect(pred.code, pred.stderr).toBe(0);
    expect(pred.stderr).toMatch(/^leads: registry: the workspace's model \(xgboost_boost\) registered as version 1, in Staging \(no model in Production\)$/m);
    expect(pred.stderr).toMatch(/^36 predictions by version 1 \(xgboost_boost, Staging, the workspace's model\) written to /m);
    const predictions = fs
      .readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => Number(l.split(',').at(-2)));
    const truth = fs
      .readFileSync(Y, 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => Number(l.trim()));
    expect(predictions.slice(0, 5)).toEqual([0, 1, 0, 1, 0]);
    expect(predictions.filter((p, i) => p === truth[i]).length / truth.length).toBeGreaterThanOrEqual(0.75);
    const registry = run(LEADS, dir, ['registry', 'list']);
    expect(registry.stdout).toMatch(/^1\s+Staging\s+xgboost_boost\s/m);
    expect(run(LEADS, dir, ['runs']).stdout.trim().split('\n').length).toBe(4); // header + one run per model

    // serve: no flag but the port; it answers /predict with the version predict used.
    const child = spawn(process.execPath, [LEADS, 'serve', '--port', '0', '--quiet'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let err = '';
        child.stderr!.on('data', (d) => {
          err += d;
          const m = /on (http:\/\/[\d.:]+)/.exec(err);
          if (m) resolve(m[1]!);
        });
        child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
      });
      const header = fs.readFileSync(path.join(dir, 'data/raw/raw_data.csv'), 'utf8').split('\n', 1)[0]!.split(',');
      const line = fs
        .readFileSync(path.join(dir, 'data/raw/raw_data.csv'), 'utf8')
        .split('\n')
        .find((l) => l.includes(',signup,') && l.includes('2024-01-1'))!
        .split(',');
      const row = Object.fromEntries(header.map((h, i) => [h, line[i]]));
      const record = {
        purchases: Number(row.purchases),
        time_spent: Number(row.time_spent),
        n_visits: Number(row.n_visits),
        customer_group: row.customer_group,
        onboarding: row.onboarding,
        source: 'signup',
      };
      const res = await fetch(`${url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(record) });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ model_version: 1, prediction: expect.any(Number) });
      expect(await (await fetch(`${url}/model`)).json()).toMatchObject({ version: 1, name: 'xgboost_boost', stage: 'Staging' });
    } finally {
      child.kill('SIGTERM');
    }
  }, 180_000);
});
