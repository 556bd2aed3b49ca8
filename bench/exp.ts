import fs from 'node:fs';
import path from 'node:path';
import { median, repeat, runCli, tempDir, timeCli, writeFiles, type Row } from './util.js';
import { applyAssignment } from '../runner/exp/params-writer.js';

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
    for (const [jobs, seeds] of [
      [1, '1,2,3'],
      [2, '4,5,6'],
    ] as const) {
      runCli(dir, ['exp', 'run', '-S', `split.seed=${seeds}`, '-S', 'train.cv=3,4', '--queue']);
      const ms = timeCli(dir, ['exp', 'run', '--run-all', '-j', String(jobs)]);
      rows.push({ name: `lead pipeline: grid of 6 experiments, --run-all -j ${jobs}`, value: ms, unit: 'ms' });
    }
    const [one, two] = rows;
    rows.push({ name: 'speed-up of -j 2 over -j 1 (2 cores)', value: one!.value / two!.value, unit: '×' });
    return [...rows, ...singleOverhead(dir)];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * What one experiment costs beyond the repro it runs, on the lead pipeline:
 * the same change (ingest.timeout_s, so only ingest reruns and the stages'
 * own time does not drown the difference) made by editing params.yaml and
 * running repro, by `exp run -S` in the workspace, and by one queued
 * experiment (`--run-all -j 1`, in a temporary copy). Each on its own
 * identical copy of `dir` (its builds made first, as a user's workspace has
 * them), interleaved, medians of 3.
 */
function singleOverhead(dir: string): Row[] {
  const ways = {
    repro: (d: string, v: number) => {
      applyAssignment(d, { 'params.yaml': { 'ingest.timeout_s': v } });
      return timeCli(d, ['repro']);
    },
    exp: (d: string, v: number) => timeCli(d, ['exp', 'run', '-S', `ingest.timeout_s=${v}`]),
    queued: (d: string, v: number) => {
      runCli(d, ['exp', 'run', '-S', `ingest.timeout_s=${v}`, '--queue']);
      return timeCli(d, ['exp', 'run', '--run-all', '-j', '1']);
    },
  };
  const times: Record<keyof typeof ways, number[]> = { repro: [], exp: [], queued: [] };
  for (let i = 0; i < 3; i++) {
    for (const way of Object.keys(ways) as (keyof typeof ways)[]) {
      const copy = `${dir}-${way}-${i}`;
      fs.cpSync(dir, copy, { recursive: true, verbatimSymlinks: true });
      try {
        runCli(copy, ['status']); // stage-module builds for this path, as the workspace has them
        times[way].push(ways[way](copy, 41 + i));
      } finally {
        fs.rmSync(copy, { recursive: true, force: true });
      }
    }
  }
  const [repro, exp, queued] = [median(times.repro), median(times.exp), median(times.queued)];
  return [
    { name: 'lead pipeline, one param change rerunning ingest only: repro (wall, median of 3)', value: repro, unit: 'ms' },
    { name: '  same as exp run -S in the workspace', value: exp, unit: 'ms' },
    { name: '  same as one queued experiment, --run-all -j 1 (temporary copy)', value: queued, unit: 'ms' },
    { name: '  overhead of the queued experiment over repro', value: queued - repro, unit: 'ms' },
  ];
}
