import fs from 'node:fs';
import path from 'node:path';
import { repeat, runCli, tempDir, timeCli, writeFiles, type Row } from './util.js';

/** `exp show` over 1,000 recorded experiments (records made from one real run, varied). */
export async function benchExpShow(): Promise<Row[]> {
  const dir = tempDir('exp1000');
  writeFiles(dir, {
    'pipeline.yaml': [
      'stages:',
      '  train:',
      '    cmd: >-',
      `      node -e "require('fs').writeFileSync('m.json', JSON.stringify({f1: \${train.lr} / 10, loss: 1 - \${train.lr} / 10}))"`,
      '    params: [train.lr, train.depth]',
      '    metrics:',
      '      - m.json: {cache: false}',
      '',
    ].join('\n'),
    'params.yaml': 'train:\n  lr: 1\n  depth: 3\n',
  });
  runCli(dir, ['exp', 'run', '-S', 'train.lr=2', '--name', 'seed']);
  const expDir = path.join(dir, '.lockstep', 'exps');
  const seed = JSON.parse(fs.readFileSync(path.join(expDir, 'seed.json'), 'utf8'));
  for (let i = 0; i < 1000; i++) {
    const lr = (i % 97) / 10;
    const rec = {
      ...seed,
      name: `exp-${i}`,
      createdAt: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
      overrides: { 'params.yaml': { 'train.lr': lr } },
      params: { 'params.yaml': { 'train.lr': lr, 'train.depth': 3 + (i % 5) } },
      metrics: { 'm.json': { f1: lr / 10, loss: 1 - lr / 10 } },
    };
    fs.writeFileSync(path.join(expDir, `exp-${i}.json`), JSON.stringify(rec, null, 1));
  }
  timeCli(dir, ['exp', 'show']);
  const text = repeat(7, () => timeCli(dir, ['exp', 'show']));
  const sorted = repeat(7, () => timeCli(dir, ['exp', 'show', '--sort-by', 'f1', '--json']));
  fs.rmSync(dir, { recursive: true, force: true });
  return [
    { name: 'exp show, 1,001 recorded experiments (wall)', value: text.median, unit: 'ms', target: '< 300 ms', ok: text.median < 300 },
    { name: 'exp show --sort-by f1 --json, same', value: sorted.median, unit: 'ms' },
  ];
}

/**
 * A grid of 6 experiments on the lead pipeline and the real data (split seed ×
 * cv folds), run from the queue one at a time and two at a time. Each grid
 * uses its own seeds so the run-cache cannot serve the second from the first.
 */
export async function benchGrid(): Promise<Row[]> {
  const { copyRepo, setSource, SHARED_RAW } = await import('./pipeline.js');
  if (!fs.existsSync(SHARED_RAW)) return [{ name: 'grid: skipped (../shared/data/raw_data.csv absent)', value: 0, unit: '' }];
  const dir = copyRepo();
  try {
    setSource(dir);
    runCli(dir, ['repro']);
    const rows: Row[] = [];
    for (const [jobs, seeds] of [[1, '1,2,3'], [2, '4,5,6']] as const) {
      runCli(dir, ['exp', 'run', '-S', `split.seed=${seeds}`, '-S', 'train.cv=3,4', '--queue']);
      const ms = timeCli(dir, ['exp', 'run', '--run-all', '-j', String(jobs)]);
      rows.push({ name: `lead pipeline: grid of 6 experiments, --run-all -j ${jobs}`, value: ms, unit: 'ms' });
    }
    const [one, two] = rows;
    rows.push({ name: 'speed-up of -j 2 over -j 1 (2 cores)', value: one!.value / two!.value, unit: '×' });
    return rows;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
