import { execSync } from 'node:child_process';
import { TempRepo } from '../helpers.js';
import { ModelRegistry } from '../../stages/lib/registry/registry.js';
import { RunStore } from '../../stages/lib/registry/run-store.js';

/**
 * A small synthetic pipeline for the UI: shell stages that write metrics and
 * plot data from params. `train` waits for a `gate` file when UI_GATE is set,
 * so a test can see it running.
 */
const PIPELINE = `stages:
  prepare:
    cmd: node prep.js
    deps: [prep.js]
    params: [prepare.rows]
    outs: [data/prepared.json]
  train:
    cmd: node train.js \${train.lr} \${train.depth}
    deps: [train.js, data/prepared.json]
    params: [train]
    outs: [model.json]
    metrics:
      - metrics.json: {cache: false}
    plots:
      - loss.json: {x: epoch, y: loss, title: Training loss}
  report:
    cmd: node -e "require('fs').writeFileSync('report.txt', 'ok')"
    deps: [metrics.json]
    outs: [report.txt]
`;
const PREP = `const fs = require('fs'); fs.mkdirSync('data', { recursive: true });
fs.writeFileSync('data/prepared.json', JSON.stringify({ rows: Number(require('fs').readFileSync('params.yaml', 'utf8').match(/rows: (\\d+)/)[1]) }));
`;
const TRAIN = `const fs = require('fs');
if (process.env.UI_GATE) { const end = Date.now() + 30000; while (!fs.existsSync('gate') && Date.now() < end) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50); }
const p = { lr: Number(process.argv[2]), depth: Number(process.argv[3]) };
const loss = Array.from({ length: 10 }, (_, i) => ({ epoch: i, loss: +(1 / (1 + p.lr * 10 * i) + p.depth / 100).toFixed(4) }));
fs.writeFileSync('loss.json', JSON.stringify(loss));
fs.writeFileSync('model.json', JSON.stringify(p));
const acc = +(0.6 + p.lr - p.depth / 100).toFixed(4);
fs.writeFileSync('metrics.json', JSON.stringify({ test: { accuracy: acc, fn: Math.round(50 - acc * 40), n: 100 }, train: { accuracy: acc + 0.05 }, loss: loss[9].loss }));
`;

export function uiRepo(): TempRepo {
  const repo = new TempRepo({
    'pipeline.yaml': PIPELINE,
    'params.yaml': '# synthetic\nprepare:\n  rows: 100\ntrain:\n  lr: 0.1   # learning rate\n  depth: 3\n',
    'prep.js': PREP,
    'train.js': TRAIN,
    '.gitignore': '.lockstep/\ngate\n',
  });
  execSync('git init -q && git config user.email t@t && git config user.name t', { cwd: repo.dir });
  return repo;
}

export function commit(repo: TempRepo, msg: string): void {
  execSync(`git add -A && git commit -qm ${JSON.stringify(msg)}`, { cwd: repo.dir });
}

const cm = (acc: number) => ({
  n: 100,
  accuracy: acc,
  precision: acc,
  recall: acc,
  f1: acc,
  precision_weighted: acc,
  recall_weighted: acc,
  f1_weighted: acc,
  confusion_matrix: { tn: 40, fp: 10, fn: 10, tp: 40 },
});

/** Two registered versions (v1 in Production, v2 in Staging) and two training runs, written by the example app's own classes. */
export async function seedModels(repo: TempRepo): Promise<void> {
  const reg = new ModelRegistry(repo.dir);
  for (const [i, acc] of [0.8, 0.85].entries()) {
    await reg.register({
      name: `model-${i + 1}`,
      family: 'xgboost (boosting)',
      model_md5: `md5-${i}`,
      data_checksum: `data-${i}`,
      params: { lr: 0.1 * (i + 1) },
      metrics: { train: cm(acc + 0.02) as never, test: cm(acc) as never },
      lock_entry: {},
      objects: { model: `${i}`.repeat(16), cleaning: 'c'.repeat(16), features: 'f'.repeat(16) },
      run_id: null,
      contents: { model: '{}', cleaning: '{}', features: '{}' },
    });
  }
  await reg.transition(1, 'Staging');
  await reg.transition(1, 'Production', { requireFrom: 'Staging' });
  await reg.transition(2, 'Staging');
  const runs = new RunStore(repo.dir);
  for (const [i, acc] of [0.78, 0.83].entries()) {
    runs.add({
      id: `2026010${i + 1}T100000Z-0000000${i}`,
      stage: 'train',
      model: `model-${i + 1}`,
      family: 'xgboost',
      started_at: `2026-01-0${i + 1}T10:00:00.000Z`,
      finished_at: `2026-01-0${i + 1}T10:01:00.000Z`,
      duration_ms: 60000,
      git: { commit: 'abcdef1234567890', dirty: i === 1 },
      data_checksum: `checksum-${i}`,
      params: { lr: 0.1 * (i + 1) },
      metrics: { train: cm(acc) as never, test: cm(acc) as never, cv_score: acc },
      artifacts: { model: { path: 'data/models/model.json', hash: `${i}`.repeat(16) } },
    });
  }
}
