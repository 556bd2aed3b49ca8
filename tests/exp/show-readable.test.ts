import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TempRepo } from '../helpers.js';
import { metricDirection } from '../../runner/exp/direction.js';
import { resolveColumn, rowsOf, selectColumns, sortRows } from '../../runner/exp/columns.js';
import type { ExpRecord } from '../../runner/exp/store.js';
import { GRID_6, leadGridRepo } from './lead-grid-fixture.js';

describe('metric directions', () => {
  it('knows the usual names, composite ones, and leaves everything else undirected', () => {
    for (const k of ['loss', 'test.confusion_matrix.fn', 'fp', 'false_negatives', 'val_loss', 'rmse', 'train_time', 'm.json:error'])
      expect(metricDirection(k), k).toBe('lower');
    for (const k of ['accuracy', 'test.f1_weighted', 'test_roc_auc', 'precision_weighted', 'recall', 'search.best_score', 'tp'])
      expect(metricDirection(k), k).toBe('higher');
    for (const k of ['n', 'test.n', 'search.n_iter', 'best_params.gamma', 'max_depth', 'loss_accuracy']) expect(metricDirection(k), k).toBeUndefined();
  });
});

const rec = (name: string, params: Record<string, unknown>, metrics: Record<string, unknown>, status: ExpRecord['status'] = 'success'): ExpRecord => ({
  name,
  status,
  createdAt: `2026-01-01T00:00:0${name.length}Z`,
  overrides: {},
  params: { 'params.yaml': params },
  metrics: { 'm.json': metrics },
});

describe('the table model', () => {
  const t = rowsOf(
    [
      rec('a', { lr: 0.1, seed: 1 }, { 'test.fn': 3, 'test.f1': 0.8, 'train.f1': 0.9, n: 100, gamma: 2 }),
      rec('b', { lr: 0.2, seed: 1 }, { 'test.fn': 5, 'test.f1': 0.7, 'train.f1': 0.95, n: 100, gamma: 3 }),
      rec('c', { lr: 0.3, seed: 1 }, { 'test.fn': 1, 'test.f1': 0.99, 'train.f1': 0.99, n: 100, gamma: 1 }, 'failed'),
    ],
    { 'params.yaml': { lr: 0.1, seed: 1 } },
  );

  it('default columns: differing params, non-constant metrics without training twins', () => {
    expect(selectColumns(t).map((c) => c.label)).toEqual(['lr', 'gamma', 'test.f1', 'test.fn']);
    expect(selectColumns(t, { all: true }).map((c) => c.id)).toEqual(['lr', 'seed', 'gamma', 'n', 'test.f1', 'test.fn', 'train.f1']);
  });

  it('best values follow the direction, among succeeded rows only, and never for constants or undirected metrics', () => {
    const byId = Object.fromEntries(selectColumns(t, { all: true }).map((c) => [c.id, [...c.best]]));
    expect(byId['test.fn']).toEqual([0]); // fewest false negatives; the failed row's 1 wins nothing
    expect(byId['test.f1']).toEqual([0]);
    expect(byId['n']).toEqual([]);
    expect(byId['gamma']).toEqual([]);
  });

  it('--only and --drop globs match names and their trailing parts', () => {
    expect(selectColumns(t, { only: ['test.*'] }).map((c) => c.id)).toEqual(['test.f1', 'test.fn']);
    expect(selectColumns(t, { only: ['*f1'], drop: ['train.*'] }).map((c) => c.id)).toEqual(['test.f1']);
    expect(selectColumns(t, { drop: ['gamma', 'l?'] }).map((c) => c.id)).toEqual(['test.f1', 'test.fn']);
  });

  it('a name resolves by unambiguous suffix; ambiguous ones list the candidates', () => {
    expect(resolveColumn(t, 'fn').id).toBe('test.fn');
    expect(() => resolveColumn(t, 'f1')).toThrow(/'f1' is ambiguous: 2 columns end with it/);
    expect(() => resolveColumn(t, 'nosuch')).toThrow(/no metric or param ends with it/);
    expect(sortRows(t, resolveColumn(t, 'fn'))).toEqual([2, 0, 1]); // lower is better: ascending
    expect(sortRows(t, resolveColumn(t, 'test.f1'))).toEqual([2, 0, 1]);
  });
});

describe('exp show on the lead pipeline grid', () => {
  let repo: TempRepo;
  beforeAll(() => {
    repo = leadGridRepo([...GRID_6, ...[4, 5, 6].flatMap((seed) => [2, 3].map((cv) => ({ seed, cv })))]);
  });
  afterAll(() => repo.cleanup());

  it('shows the differing params and the result metrics, compactly; --md fits a pull-request comment', async () => {
    const r = await repo.run(['exp', 'show']);
    expect(r.code, r.stderr).toBe(0);
    const header = r.stdout.split('\n')[0]!.split(/\s{2,}/);
    expect(header.slice(0, 5)).toEqual(['Experiment', 'Status', 'Created', 'split.seed', 'train.cv']);
    expect(header).toContain('test.f1_weighted');
    expect(header).toContain('test.fn');
    for (const hidden of ['test.n', 'train.f1', 'search.n_iter', 'train.seed', 'ingest.md5']) expect(header).not.toContain(hidden);
    expect(header.length).toBeLessThan(25);
    expect(r.stdout).toMatch(/\d+ more columns .*--all shows them/);
    const md = await repo.run(['exp', 'show', '--md']);
    expect(Buffer.byteLength(md.stdout)).toBeLessThan(4096);
    expect(md.stdout.split('\n')).toHaveLength(14); // header, rule, 12 experiments
    const all = await repo.run(['exp', 'show', '--all', '--csv']);
    expect(all.stdout.split('\n')[0]!.split(',').length).toBeGreaterThan(130);
    expect(all.stdout).toContain('data/metrics/xgboost_rf.json:search.n_iter');
  });

  it('★ marks the fewest false negatives, the highest F1, and nothing constant or undirected', async () => {
    const j = JSON.parse((await repo.run(['exp', 'show', '--json'])).stdout) as {
      experiments: { name: string; metrics: Record<string, number> }[];
      best: Record<string, string>;
      directions: Record<string, string>;
    };
    const fn = 'data/metrics/selected.json:test.confusion_matrix.fn';
    const f1 = 'data/metrics/selected.json:test.f1_weighted';
    const values = (k: string) => j.experiments.map((e) => e.metrics[k]!);
    expect(j.directions[fn]).toBe('lower');
    expect(j.experiments.find((e) => e.name === j.best[fn])!.metrics[fn]).toBe(Math.min(...values(fn)));
    expect(j.experiments.find((e) => e.name === j.best[f1])!.metrics[f1]).toBe(Math.max(...values(f1)));
    for (const k of ['data/metrics/selected.json:test.n', 'data/metrics/xgboost_rf.json:search.n_iter', 'data/metrics/selected.json:best_params.gamma'])
      expect(j.best[k], k).toBeUndefined();
    // in the table: the ★ of test.fn is on the row with the smallest value
    const text = (await repo.run(['exp', 'show', '--only', 'selected:test.confusion_matrix.fn'])).stdout.split('\n');
    expect(text[0]).toMatch(/test\.fn$/);
    const starred = text.filter((l) => l.startsWith('exp-') && l.includes(' ★')).map((l) => Number(l.trim().split(/\s+/).at(-2)));
    expect(starred.length).toBeGreaterThan(0);
    for (const v of starred) expect(v).toBe(Math.min(...values(fn)));
  });

  it('--sort-by takes an unambiguous suffix and lists the few candidates of an ambiguous one', async () => {
    const amb = await repo.run(['exp', 'show', '--sort-by', 'test.f1_weighted']);
    expect(amb.code).toBe(2);
    expect(amb.stderr).toContain("'test.f1_weighted' is ambiguous: 4 columns end with it");
    expect(amb.stderr).toContain('data/metrics/selected.json:test.f1_weighted');
    expect(amb.stderr.length).toBeLessThan(600);
    expect(amb.stderr.trim().split('\n')).toHaveLength(2);
    const ok = await repo.run(['exp', 'show', '--sort-by', 'selected:test.f1_weighted', '--csv', '--only', 'selected:test.f1_weighted']);
    expect(ok.code, ok.stderr).toBe(0);
    const col = ok.stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => Number(l.split(',').at(-1)!.replace(' ★', '')));
    expect(col).toEqual([...col].sort((a, b) => b - a));
    const missing = await repo.run(['exp', 'show', '--sort-by', 'f1_weightd']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("cannot sort by 'f1_weightd'");
  });

  it('--only and --drop choose columns by glob', async () => {
    const only = await repo.run(['exp', 'show', '--csv', '--only', 'selected:test.*', '--drop', '*confusion*,*weighted']);
    expect(only.stdout.split('\n')[0]).toBe(
      'Experiment,Status,Created,' + ['accuracy', 'f1', 'n', 'precision', 'recall'].map((k) => `data/metrics/selected.json:test.${k}`).join(','),
    );
  });
});

// score = 10·lr + seed/100, loss = 1 - lr.
const PIPELINE = `stages:
  train:
    cmd: >-
      node -e "const lr=\${train.lr}, seed=\${split.seed};
      require('fs').writeFileSync('metrics.json', JSON.stringify({score: 10*lr + seed/100, loss: 1 - lr, n: 5}))"
    params: [train.lr, split.seed]
    metrics:
      - metrics.json: {cache: false}
`;

describe('directions declared in pipeline.yaml', () => {
  let repo: TempRepo;
  afterEach(() => repo?.cleanup());

  it('a metrics file can say which metrics are better lower or higher (globs); bad values are named', async () => {
    repo = new TempRepo({
      'pipeline.yaml': PIPELINE.replace('- metrics.json: {cache: false}', "- metrics.json: {cache: false, lower: [score], higher: ['l*s']}"),
      'params.yaml': 'train:\n  lr: 0.1\nsplit:\n  seed: 1\n',
    });
    await repo.run(['exp', 'run', '-S', 'train.lr=0.2', '-n', 'a']);
    await repo.run(['exp', 'run', '-S', 'train.lr=0.4', '-n', 'b']);
    const j = JSON.parse((await repo.run(['exp', 'show', '--json'])).stdout) as { best: Record<string, string>; directions: Record<string, string> };
    expect(j.directions).toEqual({ score: 'lower', loss: 'higher' });
    expect(j.best).toEqual({ score: 'a', loss: 'a' });
    const sorted = (await repo.run(['exp', 'show', '--csv', '--sort-by', 'score'])).stdout.split('\n');
    expect(sorted[1]).toMatch(/^a,/);
    repo.write({ 'pipeline.yaml': PIPELINE.replace('- metrics.json: {cache: false}', '- metrics.json: {cache: false, lower: {x: 1}}') });
    const bad = await repo.run(['exp', 'show']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^pipeline\.yaml:\d+:\d+: error: 'lower' must be a list of metric names/);
    repo.write({ 'pipeline.yaml': PIPELINE.replace('- metrics.json: {cache: false}', '- metrics.json: {cache: false, lowr: [x]}') });
    expect((await repo.run(['exp', 'show'])).stderr).toContain("did you mean 'lower'?");
  });
});

describe('exp show and exp diff on real experiments', () => {
  let repo: TempRepo;
  afterEach(() => repo?.cleanup());

  it('queued rows show the values they were queued with; exp diff shows only what differs unless --all', async () => {
    repo = new TempRepo({ 'pipeline.yaml': PIPELINE, 'params.yaml': 'train:\n  lr: 0.1\nsplit:\n  seed: 1\n' });
    expect((await repo.run(['exp', 'run', '-S', 'train.lr=0.2', '-n', 'a'])).code).toBe(0);
    expect((await repo.run(['exp', 'run', '-S', 'train.lr=0.4', '-n', 'b'])).code).toBe(0);
    expect((await repo.run(['exp', 'run', '-S', 'train.lr=0.7', '-S', 'split.seed=3', '-n', 'q', '--queue'])).code).toBe(0);
    const csv = (await repo.run(['exp', 'show', '--csv'])).stdout.trim().split('\n');
    expect(csv[0]).toBe('Experiment,Status,Created,split.seed,train.lr,loss,score');
    const q = csv.find((l) => l.startsWith('q,'))!.split(',');
    expect(q.slice(0, 2)).toEqual(['q', 'queued']);
    expect(q.slice(3)).toEqual(['3', '0.7', '-', '-']);
    expect(csv.find((l) => l.startsWith('b,'))).toMatch(/,1,0\.4,0\.6 ★,4\.01 ★$/);
    expect(csv.find((l) => l.startsWith('a,'))).toMatch(/,1,0\.2,0\.8,2\.01$/);

    const d = await repo.run(['exp', 'diff', 'a', 'b']);
    expect(d.code).toBe(0);
    expect(d.stdout).toMatch(/param\s+params\.yaml:train\.lr\s+0\.2\s+0\.4/);
    expect(d.stdout).toMatch(/metric\s+metrics\.json:score\s+2\.01\s+4\.01\s+\+2/);
    expect(d.stdout).not.toContain('split.seed');
    expect(d.stdout).not.toContain(':n ');
    const all = await repo.run(['exp', 'diff', 'a', 'b', '--all']);
    expect(all.stdout).toMatch(/param\s+params\.yaml:split\.seed\s+1\s+1/);
    expect(all.stdout).toMatch(/metric\s+metrics\.json:n\s+5\s+5\s+0/);
    // a queued experiment compares with the values it was queued with
    const dq = await repo.run(['exp', 'diff', 'a', 'q']);
    expect(dq.stdout).toMatch(/param\s+params\.yaml:split\.seed\s+1\s+3/);
    expect(dq.stdout).toMatch(/param\s+params\.yaml:train\.lr\s+0\.2\s+0\.7/);
    const same = await repo.run(['exp', 'diff', 'a', 'a']);
    expect(same.stdout).toBe('a and a have the same params and metrics.');
  });
});
