import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { buildSync } from 'esbuild';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Prng } from '../../stages/lib/prng.js';
import { trainXgb, xgbProba, type XgbParams } from '../../stages/lib/models/xgboost.js';
import { REPO } from './fixtures.js';

function data(n: number): { X: number[][]; y: number[] } {
  const rng = new Prng(5);
  const X = Array.from({ length: n }, () => [rng.uniform(0, 1), rng.uniform(0, 1), rng.int(0, 1)]);
  return { X, y: X.map((x) => (x[0]! + 0.5 * x[2]! + rng.uniform(-0.2, 0.2) > 0.75 ? 1 : 0)) };
}

const base: XgbParams = {
  mode: 'random_forest',
  n_estimators: 20,
  learning_rate: 0.2,
  gamma: 0.5,
  max_depth: 4,
  subsample: 0.7,
  colsample_bylevel: 0.8,
  reg_lambda: 1e-5,
  objective: 'binary:logistic',
  seed: 3,
};

describe('ml-xgboost wrapper', () => {
  const { X, y } = data(300);

  it.each(['random_forest', 'boosting'] as const)('%s: learns, and predicts identically after a JSON round trip', async (mode) => {
    const model = await trainXgb(X, y, { ...base, mode });
    const reloaded = JSON.parse(JSON.stringify(model)) as typeof model;
    const p1 = await xgbProba(model, X);
    const p2 = await xgbProba(reloaded, X);
    expect(p2).toEqual(p1);
    const acc = p1.filter((p, i) => (p > 0.5 ? 1 : 0) === y[i]).length / y.length;
    expect(acc).toBeGreaterThan(0.85);
  });

  it('is deterministic for a seed, and the seed matters when rows are subsampled', async () => {
    const a = await trainXgb(X, y, base);
    expect((await trainXgb(X, y, base)).booster).toBe(a.booster);
    expect((await trainXgb(X, y, { ...base, seed: 4 })).booster).not.toBe(a.booster);
  });

  it('random-forest mode grows num_parallel_tree trees in one round', async () => {
    const one = await trainXgb(X, y, { ...base, n_estimators: 1 });
    const many = await trainXgb(X, y, { ...base, n_estimators: 30 });
    expect(Buffer.from(many.booster, 'base64').length).toBeGreaterThan(10 * Buffer.from(one.booster, 'base64').length);
  });

  it('binary:logitraw margins become probabilities', async () => {
    const raw = await trainXgb(X, y, { ...base, mode: 'boosting', objective: 'binary:logitraw' });
    const p = await xgbProba(raw, X);
    expect(p.every((v) => v > 0 && v < 1)).toBe(true);
    expect(p.filter((v, i) => (v > 0.5 ? 1 : 0) === y[i]).length / y.length).toBeGreaterThan(0.85);
  });

  it('rejects a zero subsample', async () => {
    await expect(trainXgb(X, y, { ...base, subsample: 0 })).rejects.toThrow(/subsample must be in \(0, 1\]/);
  });

  it('loads without the WASM loader’s noise on stderr, and real errors still surface', () => {
    // A real process, as a stage runs: the wrapper bundled like the engine does (packages external).
    const dir = path.join(REPO, 'test-artifacts', `xgb-load-${process.pid}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'entry.ts'),
      `
      import { trainXgb } from ${JSON.stringify(path.join(REPO, 'stages/lib/models/xgboost.ts'))};
      await trainXgb([[0],[1],[0],[1]], [0,1,0,1], { mode: 'boosting', n_estimators: 2, learning_rate: 0.3, gamma: 0, max_depth: 2, subsample: 1, colsample_bylevel: 1, reg_lambda: 1, objective: 'binary:logistic', seed: 1 });
      console.log('trained');
      setTimeout(() => { throw new Error('a later crash'); }, 0);`,
    );
    buildSync({
      entryPoints: [path.join(dir, 'entry.ts')],
      outfile: path.join(dir, 'entry.mjs'),
      bundle: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      logLevel: 'silent',
    });
    const r = spawnSync(process.execPath, [path.join(dir, 'entry.mjs')], { cwd: REPO, encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(r.stdout.trim()).toBe('trained');
    expect(r.stderr).not.toMatch(/streaming compile|falling back/);
    // Node's own uncaught-exception exit (1), not the Emscripten handler's rethrow (7).
    expect(r.stderr).toMatch(/a later crash/);
    expect(r.status).toBe(1);
  });
});
