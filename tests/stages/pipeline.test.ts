import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { md5OfFile } from '../../stages/lib/data/checksum.js';
import { cleanRows } from '../../stages/lib/data/clean.js';
import { parseCsv, readCsv } from '../../stages/lib/data/csv.js';
import { featureVector } from '../../stages/lib/data/features.js';
import { loadBundle, resolveVersion, WORKSPACE } from '../../stages/lib/prediction/bundle.js';
import { predictRows, rawRowToFeatures } from '../../stages/lib/prediction/predict.js';
import { ModelRegistry } from '../../stages/lib/registry/registry.js';
import { RunStore } from '../../stages/lib/registry/run-store.js';
import { syncWithWorkspace } from '../../stages/lib/registry/workspace-sync.js';
import { HAS_REAL_DATA, RAW_REAL, rawCsv, repoParams, syntheticRaw, tempDir, VALIDATOR_X, VALIDATOR_Y } from './fixtures.js';
import { quickTrainParams, runPipeline } from './pipeline-run.js';
import type { ParamValue } from '../../runner/module-contract.js';

const cleanup: string[] = [];
const workspaceBundle = async (root: string) => loadBundle(new ModelRegistry(root), await resolveVersion(root, WORKSPACE));
afterAll(() => {
  for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true });
});

describe('the pipeline on synthetic data', () => {
  let root: string;
  let logs: string[];
  beforeAll(async () => {
    root = tempDir();
    cleanup.push(root);
    const src = path.join(root, 'source.csv');
    fs.writeFileSync(src, rawCsv(syntheticRaw(900, 3)));
    const params = quickTrainParams(repoParams());
    ({ logs } = await runPipeline(root, { ...params, ingest: { source: 'source.csv', md5: md5OfFile(src) } }));
  });

  it('writes every declared output; leads files one run per model and stages the workspace winner', async () => {
    for (const f of [
      'data/raw/raw_data.csv',
      'data/clean/clean.csv',
      'data/clean/artifacts.json',
      'data/clean/columns.json',
      'data/features/train.csv',
      'data/features/test.csv',
      'data/features/schema.json',
      'data/metrics/selected.json',
      'data/plots/roc/xgboost_rf.json',
      'data/plots/pr/logistic_regression.json',
      'data/plots/confusion/xgboost_boost.json',
    ]) {
      expect(fs.existsSync(path.join(root, f)), f).toBe(true);
    }
    // Nothing is filed by the stages themselves: the registry and runs follow the outputs when read.
    expect(new RunStore(root).list()).toEqual([]);
    expect(new ModelRegistry(root).list()).toEqual([]);
    const sync = await syncWithWorkspace(root);
    expect(sync.runsAdded).toBe(3);
    expect((await syncWithWorkspace(root)).runsAdded).toBe(0);
    const runs = new RunStore(root).list();
    expect(runs.map((r) => r.model).sort()).toEqual(['logistic_regression', 'xgboost_boost', 'xgboost_rf']);
    const reg = new ModelRegistry(root);
    expect(reg.list().map((v) => v.stage)).toEqual(['Staging']);
    const selected = JSON.parse(fs.readFileSync(path.join(root, 'data/metrics/selected.json'), 'utf8')) as { model: string };
    expect(reg.list()[0]!.name).toBe(selected.model);
    // The version points at its run and at the cache objects of its files; the run at its artifacts'.
    const run = runs.find((r) => r.model === selected.model)!;
    expect(reg.list()[0]!.run_id).toBe(run.id);
    expect(reg.list()[0]!.objects.model).toBe(run.artifacts.model!.hash);
    expect(run.artifacts.model!.path).toBe(`data/models/${selected.model}.json`);
    // select says what it selected and claims nothing about a registry.
    expect(logs.filter((l) => l.startsWith('select: '))).toEqual([expect.stringMatching(/^select: \w+ \(test F1 weighted [\d.]+ of 3 candidates\)$/)]);
  });

  it('raw-row prediction replays clean exactly: the same features as the cleaned table', async () => {
    const bundle = await workspaceBundle(root);
    const raw = readCsv(path.join(root, 'data/raw/raw_data.csv')).rows;
    const { rows: cleaned } = cleanRows(raw, { minDate: '2024-01-01', maxDate: '2024-01-31' });
    const kept = raw.filter((r) => cleaned.some((c) => c.lead_id === r.lead_id));
    kept.forEach((r, i) => {
      const got = rawRowToFeatures(r, bundle);
      expect('features' in got && got.features.map((v) => +v.toFixed(12))).toEqual(featureVector(cleaned[i]!, bundle.features).map((v) => +v.toFixed(12)));
    });
  });

  it('reports unknown and missing columns and bad values per row, and predicts nothing then', async () => {
    const bundle = await workspaceBundle(root);
    const base = readCsv(path.join(root, 'data/raw/raw_data.csv')).rows[0]!;
    const { purchases: _p, ...noPurchases } = base;
    const out = await predictRows(
      [base, { ...base, colour: 'red' }, noPurchases, { ...base, n_visits: 'ten' }, { ...base, customer_group: '42' }, { ...base, source: 'tv' }],
      { mode: 'raw', bundle },
    );
    expect(out.ok).toBe(false);
    expect(!out.ok && out.errors).toEqual([
      { row: 2, message: 'unknown column colour' },
      { row: 3, message: 'missing column purchases' },
      { row: 4, message: 'n_visits must be a number, got "ten"' },
      { row: 5, message: expect.stringMatching(/^customer_group '42' was not seen in training/) },
      { row: 6, message: expect.stringMatching(/^source 'tv' is not one of li, fb, organic, signup/) },
    ]);
    const ok = await predictRows([base, { ...base, purchases: '' }], { mode: 'raw', bundle });
    expect(ok.ok && ok.predictions.every((p) => (p.prediction === 1) === p.probability > 0.5)).toBe(true);
    const feats = await predictRows([{ purchases: '0.5' }], { mode: 'features', bundle });
    expect(!feats.ok && feats.errors[0]!.message).toMatch(/^missing columns time_spent, n_visits, customer_group_2/);
  });
});

describe.skipIf(!HAS_REAL_DATA)('the pipeline on the real data with the default params', () => {
  const roots: string[] = [];
  const runs: Awaited<ReturnType<typeof runPipeline>>[] = [];
  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const root = tempDir('leads-real-');
      roots.push(root);
      cleanup.push(root);
      const params = repoParams();
      runs.push(await runPipeline(root, { ...params, ingest: { ...(params.ingest as object), source: RAW_REAL } as ParamValue }));
    }
  }, 120_000);

  it('selects a model with test F1 >= 0.75 that passes the validator', async () => {
    const selected = JSON.parse(fs.readFileSync(path.join(roots[0]!, 'data/metrics/selected.json'), 'utf8')) as {
      model: string;
      test: { f1: number; f1_weighted: number; accuracy: number };
    };
    expect(selected.test.f1).toBeGreaterThanOrEqual(0.75);
    expect(selected.test.f1_weighted).toBeGreaterThanOrEqual(0.75);
    const bundle = await workspaceBundle(roots[0]!);
    const out = await predictRows(readCsv(VALIDATOR_X).rows, { mode: 'features', bundle });
    if (!out.ok) throw new Error(JSON.stringify(out.errors));
    const pred = out.predictions.map((p) => p.prediction);
    const truth = readCsv(VALIDATOR_Y).rows.map((r) => Number(r.lead_indicator));
    expect(pred.slice(0, 5)).toEqual([0, 1, 0, 1, 0]);
    expect(pred.filter((p, i) => p === truth[i]).length / truth.length).toBeGreaterThanOrEqual(0.75);
    console.log(
      `real data: selected ${selected.model}, test acc ${selected.test.accuracy.toFixed(4)}, F1 ${selected.test.f1.toFixed(4)}; validator ${pred.filter((p, i) => p === truth[i]).length}/36; stage ms ${JSON.stringify(runs[0]!.ms, (_k, v) => (typeof v === 'number' ? Math.round(v) : v))}`,
    );
  });

  it('same params and data give byte-identical models, metrics and plots', () => {
    const files = (root: string): string[] =>
      ['data/models', 'data/metrics', 'data/plots', 'data/features', 'data/clean']
        .flatMap((d) =>
          fs
            .readdirSync(path.join(root, d), { recursive: true, withFileTypes: true })
            .filter((e) => e.isFile())
            .map((e) => path.relative(root, path.join(e.parentPath, e.name))),
        )
        .sort();
    const a = files(roots[0]!);
    expect(a.length).toBeGreaterThan(10);
    expect(files(roots[1]!)).toEqual(a);
    for (const f of a) expect(md5OfFile(path.join(roots[1]!, f)), f).toBe(md5OfFile(path.join(roots[0]!, f)));
  });

  it('raw rows: signups are scored, other sources get a clear per-row error', async () => {
    const bundle = await workspaceBundle(roots[0]!);
    const rows = parseCsv(fs.readFileSync(RAW_REAL, 'utf8').split('\n').slice(0, 200).join('\n')).rows;
    const signups = rows.filter((r) => r.source === 'signup');
    const ok = await predictRows(signups, { mode: 'raw', bundle });
    expect(ok.ok ? ok.predictions.length : ok.errors).toBe(signups.length);
    const li = await predictRows([rows.find((r) => r.source === 'li')!], { mode: 'raw', bundle });
    expect(!li.ok && li.errors).toEqual([{ row: 1, message: "source 'li' cannot be scored: the model was trained on signup rows only" }]);
  });
});
