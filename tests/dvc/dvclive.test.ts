import { execSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { TempRepo } from '../helpers.js';

let repo: TempRepo;
afterEach(() => repo?.cleanup());

/**
 * A repository shaped like what DVCLive produces: the stage logs through a
 * "DVCLive" (here a small script doing what the Python library does) into
 * dvclive/, and dvc.yaml — renamed pipeline.yaml — names those files in its
 * top-level params/metrics/plots sections, not under the stage.
 */
const PIPELINE = `params:
  - dvclive/params.yaml
metrics:
  - dvclive/metrics.json
plots:
  - dvclive/plots/metrics:
      x: step
stages:
  train:
    cmd: node train.js
    deps: [train.js]
    params: [train]
    outs: [model.txt]
`;

// loss falls as 1/(lr·(step+1)); acc rises; params.yaml's train section is logged as DVCLive does.
const TRAIN = `const fs = require('fs');
const YAML = { dump: (o) => Object.entries(o).map(([k, v]) => k + ': ' + v).join('\\n') + '\\n' };
const src = fs.readFileSync('params.yaml', 'utf8');
const lr = Number(/lr: ([\\d.]+)/.exec(src)[1]);
const epochs = Number(/epochs: (\\d+)/.exec(src)[1]);
fs.mkdirSync('dvclive/plots/metrics/train', { recursive: true });
let loss = '', acc = '';
for (let s = 0; s < epochs; s++) {
  loss += 'timestamp\\tstep\\tloss\\n'.slice(s ? 99 : 0) + (1000 + s) + '\\t' + s + '\\t' + (1 / (lr * 10 * (s + 1))).toFixed(4) + '\\n';
  acc += 'timestamp\\tstep\\tacc\\n'.slice(s ? 99 : 0) + (1000 + s) + '\\t' + s + '\\t' + (0.5 + lr * s / 10).toFixed(4) + '\\n';
}
fs.writeFileSync('dvclive/plots/metrics/train/loss.tsv', loss);
fs.writeFileSync('dvclive/plots/metrics/train/acc.tsv', acc);
fs.writeFileSync('dvclive/params.yaml', YAML.dump({ lr, epochs, optimizer: 'sgd' }));
const last = epochs - 1;
fs.writeFileSync('dvclive/metrics.json', JSON.stringify({ train: { loss: +(1 / (lr * 10 * epochs)).toFixed(4), acc: +(0.5 + lr * last / 10).toFixed(4) }, step: last }, null, 4));
fs.writeFileSync('model.txt', 'weights ' + lr);
`;

function dvcliveRepo(lr = 0.1): TempRepo {
  const r = new TempRepo({ 'pipeline.yaml': PIPELINE, 'params.yaml': `train:\n  lr: ${lr}\n  epochs: 5\n`, 'train.js': TRAIN, '.gitignore': '/model.txt\n' });
  execSync('git init -q && git config user.email t@t && git config user.name t', { cwd: r.dir });
  return r;
}

const commit = (msg: string) => execSync(`git add -A && git commit -qm "${msg}"`, { cwd: repo.dir });

describe('DVCLive layout: top-level params and metrics', () => {
  it('metrics show/diff read dvclive/metrics.json; params diff reads dvclive/params.yaml', async () => {
    repo = dvcliveRepo(0.1);
    expect((await repo.run(['repro'])).code).toBe(0);
    commit('lr 0.1');
    repo.write({ 'params.yaml': 'train:\n  lr: 0.2\n  epochs: 5\n' });
    expect((await repo.run(['repro'])).code).toBe(0);

    const show = await repo.run(['metrics', 'show']);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/workspace\s+dvclive\/metrics\.json\s+train\.loss\s+0\.1\b/);
    expect(show.stdout).toMatch(/dvclive\/metrics\.json\s+step\s+4/);

    const diff = await repo.run(['metrics', 'diff', '--json']);
    const changes = (JSON.parse(diff.stdout) as { changes: { path: string; key: string; old: number; new: number }[] }).changes;
    expect(changes.map((c) => [c.path, c.key, c.old, c.new])).toEqual([
      ['dvclive/metrics.json', 'train.acc', 0.54, 0.58],
      ['dvclive/metrics.json', 'train.loss', 0.2, 0.1],
    ]);

    const params = await repo.run(['params', 'diff']);
    expect(params.code, params.stderr).toBe(0);
    expect(params.stdout).toMatch(/dvclive\/params\.yaml\s+lr\s+0\.1\s+0\.2/);
    expect(params.stdout).toMatch(/params\.yaml\s+train\.lr\s+0\.1\s+0\.2/);
    expect(params.stdout).not.toContain('optimizer'); // unchanged
  });

  it('exp show lists the logged metrics and params of each experiment', async () => {
    repo = dvcliveRepo(0.1);
    expect((await repo.run(['repro'])).code).toBe(0);
    commit('baseline');
    const e = await repo.run(['exp', 'run', '-S', 'train.lr=0.5', '--name', 'fast']);
    expect(e.code, e.stderr).toBe(0);
    expect((await repo.run(['exp', 'run', '-S', 'train.lr=0.25', '--name', 'slow'])).code).toBe(0);
    const j = JSON.parse((await repo.run(['exp', 'show', '--json'])).stdout) as {
      experiments: { name: string; params: Record<string, unknown>; metrics: Record<string, number> }[];
    };
    const fast = j.experiments.find((x) => x.name === 'fast')!;
    expect(fast.metrics).toEqual({ 'train.loss': 0.04, 'train.acc': 0.7, step: 4 });
    // params of both files, the stage's params.yaml and the logged dvclive/params.yaml (those that vary)
    expect(fast.params).toEqual({ 'dvclive/params.yaml:lr': 0.5, 'params.yaml:train.lr': 0.5 });
    const text = await repo.run(['exp', 'show']);
    expect(text.stdout).toMatch(/fast\s.*0\.5\*?\s+0\.5\*?\s+.*0\.04 ★/);
    // DVCLive's plot files belong to no stage: the experiments kept them, so their curves can be compared
    const d = await repo.run(['plots', 'diff', '--exp', 'fast', '--exp', 'slow', '--json']);
    expect(d.code, d.stderr).toBe(0);
    const values = (JSON.parse(d.stdout) as PlotJson).plots[0]!.spec!.data.values;
    expect(values.find((v) => v.series === 'fast · train/loss' && v.step === 0)!.dvc_inferred_y_value).toBe(0.2);
    expect(values.find((v) => v.series === 'slow · train/loss' && v.step === 0)!.dvc_inferred_y_value).toBe(0.4);
  });

  it('refuses a malformed top-level params or metrics section by name', async () => {
    repo = new TempRepo({ 'pipeline.yaml': 'metrics: dvclive/metrics.json\nparams:\n  - {a: 1}\nstages: {}\n' });
    const r = await repo.run(['metrics', 'show']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("pipeline.yaml:1:10: error: top-level 'metrics' must be a list of file paths");
    expect(r.stderr).toMatch(/pipeline\.yaml:3:5: error: an entry of top-level 'params' must be a file path/);
  });
});

type PlotJson = {
  plots: {
    path: string;
    template: string;
    error?: string;
    spec?: { title: string; data: { values: Record<string, unknown>[] }; encoding?: Record<string, { field?: string; title?: string; sort?: string }> };
  }[];
};

const roc = (k: number) =>
  JSON.stringify({ roc: Array.from({ length: 6 }, (_, i) => ({ fpr: i / 5, tpr: Math.min(1, (i / 5) ** (1 / k)), threshold: 1 - i / 5 })) });

/** example-get-started's evaluation layout: sklearn-style files named under top-level plot definitions. */
const EVAL_PIPELINE = `metrics:
  - eval/metrics.json
plots:
  - ROC:
      template: simple
      x: fpr
      y:
        eval/plots/sklearn/roc/train.json: tpr
        eval/plots/sklearn/roc/test.json: tpr
  - Confusion-Matrix:
      template: confusion
      x: actual
      y:
        eval/plots/sklearn/cm/test.json: predicted
  - eval/importance.csv:
      template: bar_horizontal_sorted
      x: feature
      y: importance
  - eval/history.csv:
      y: [acc, loss]
  - eval/raw.csv:
      header: false
      x: "0"
      y: "1"
  - eval/labels.json:
      template: scatter_jitter
      x: actual
      y: predicted
  - custom:
      template: .dvc/plots/area.json
      x: step
      y:
        eval/history.csv: acc
stages: {}
`;

const AREA = JSON.stringify(
  {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: '<DVC_METRIC_TITLE>',
    data: { values: '<DVC_METRIC_DATA>' },
    width: '<DVC_METRIC_PLOT_WIDTH>',
    mark: 'area',
    encoding: {
      x: { field: '<DVC_METRIC_X>', type: 'quantitative', title: '<DVC_METRIC_X_LABEL>' },
      y: { field: '<DVC_METRIC_Y>', type: 'quantitative', title: '<DVC_METRIC_Y_LABEL>' },
      color: '<DVC_METRIC_COLOR>',
    },
  },
  null,
  2,
);

function evalRepo(): TempRepo {
  const labels = Array.from({ length: 20 }, (_, i) => ({ actual: i % 2, predicted: i % 3 ? i % 2 : 1 - (i % 2) }));
  return new TempRepo({
    'pipeline.yaml': EVAL_PIPELINE,
    'eval/metrics.json': '{"avg_prec": {"train": 0.9, "test": 0.8}, "roc_auc": {"test": 0.85}}',
    'eval/plots/sklearn/roc/train.json': roc(3),
    'eval/plots/sklearn/roc/test.json': roc(2),
    'eval/plots/sklearn/cm/test.json': JSON.stringify(labels),
    'eval/importance.csv': 'feature,importance\nage,0.1\nincome,0.5\nvisits,0.3\n',
    'eval/history.csv': 'step,acc,loss\n0,0.5,0.9\n1,0.6,0.7\n2,0.7,0.5\n',
    'eval/raw.csv': '1,10\n2,20\n3,15\n',
    'eval/labels.json': JSON.stringify(labels),
    '.dvc/plots/area.json': AREA,
  });
}

describe('DVCLive layout: plots', () => {
  it('a folder of DVCLive metric files: one series per file, each file its own y column', async () => {
    repo = dvcliveRepo(0.1);
    expect((await repo.run(['repro'])).code).toBe(0);
    const r = await repo.run(['plots', 'show', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [p] = (JSON.parse(r.stdout) as PlotJson).plots;
    expect(p!.path).toBe('dvclive/plots/metrics');
    const values = p!.spec!.data.values;
    expect(new Set(values.map((v) => v.series))).toEqual(new Set(['train/acc', 'train/loss']));
    // different y columns meet in DVC's inferred field; x is DVCLive's step column
    expect(values.find((v) => v.series === 'train/loss' && v.step === 0)).toMatchObject({ dvc_inferred_y_value: 1, field: 'loss' });
    expect(values.find((v) => v.series === 'train/acc' && v.step === 4)).toMatchObject({ dvc_inferred_y_value: 0.54, field: 'acc' });
    expect(p!.spec!.encoding!.y!.field).toBe('dvc_inferred_y_value');
    expect(p!.spec!.encoding!.y!.title).toBe('acc, loss');
  });

  it('plots diff reads a DVCLive folder inside a cached output at a git revision through its lock and the cache', async () => {
    repo = dvcliveRepo(0.1);
    repo.write({ 'pipeline.yaml': PIPELINE.replace('outs: [model.txt]', 'outs: [model.txt, dvclive]') });
    expect((await repo.run(['repro'])).code).toBe(0);
    expect(repo.read('.gitignore')).toBe('/model.txt\n/dvclive\n'); // the cached output is kept out of git
    commit('lr 0.1');
    repo.write({ 'params.yaml': 'train:\n  lr: 0.2\n  epochs: 5\n' });
    expect((await repo.run(['repro'])).code).toBe(0);
    const r = await repo.run(['plots', 'diff', 'HEAD', 'workspace', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const values = (JSON.parse(r.stdout) as PlotJson).plots[0]!.spec!.data.values;
    expect(new Set(values.map((v) => v.series))).toEqual(new Set(['HEAD · train/acc', 'HEAD · train/loss', 'workspace · train/acc', 'workspace · train/loss']));
    expect(values.find((v) => v.series === 'HEAD · train/loss' && v.step === 0)!.dvc_inferred_y_value).toBe(1);
    expect(values.find((v) => v.series === 'workspace · train/loss' && v.step === 0)!.dvc_inferred_y_value).toBe(0.5);
    // metrics and logged params inside the cached output are read at HEAD the same way (git does not have them)
    const m = JSON.parse((await repo.run(['metrics', 'diff', 'HEAD', '--json'])).stdout) as { changes: { key: string; old: number; new: number }[] };
    expect(m.changes.find((c) => c.key === 'train.loss')).toMatchObject({ old: 0.2, new: 0.1 });
    expect((await repo.run(['params', 'diff', 'HEAD'])).stdout).toMatch(/dvclive\/params\.yaml\s+lr\s+0\.1\s+0\.2/);
  });

  it('top-level definitions: x/y maps over several files, y lists, header: false, the shipped templates and a custom one', async () => {
    repo = evalRepo();
    const r = await repo.run(['plots', 'show', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const plots = new Map((JSON.parse(r.stdout) as PlotJson).plots.map((p) => [p.path, p]));
    expect([...plots.keys()]).toEqual(['ROC', 'Confusion-Matrix', 'eval/importance.csv', 'eval/history.csv', 'eval/raw.csv', 'eval/labels.json', 'custom']);

    const rocValues = plots.get('ROC')!.spec!.data.values;
    expect(new Set(rocValues.map((v) => v.series))).toEqual(new Set(['eval/plots/sklearn/roc/train', 'eval/plots/sklearn/roc/test']));
    expect(rocValues.filter((v) => v.series === 'eval/plots/sklearn/roc/test').map((v) => v.tpr)).toEqual([
      0,
      Math.sqrt(0.2),
      Math.sqrt(0.4),
      Math.sqrt(0.6),
      Math.sqrt(0.8),
      1,
    ]);
    expect(plots.get('ROC')!.spec!.title).toBe('ROC');

    expect(plots.get('eval/importance.csv')!.template).toBe('bar_horizontal_sorted');
    expect(plots.get('eval/importance.csv')!.spec!.encoding!.y!.sort).toBe('-x');

    const hist = plots.get('eval/history.csv')!.spec!.data.values;
    expect(hist.filter((v) => v.series === 'acc').map((v) => v.dvc_inferred_y_value)).toEqual([0.5, 0.6, 0.7]);
    expect(hist.filter((v) => v.series === 'loss').map((v) => v.dvc_inferred_y_value)).toEqual([0.9, 0.7, 0.5]);

    // no header row: columns by position; the first row is data
    expect(plots.get('eval/raw.csv')!.spec!.data.values.map((v) => [v['0'], v['1']])).toEqual([
      [1, 10],
      [2, 20],
      [3, 15],
    ]);

    expect(plots.get('eval/labels.json')!.template).toBe('scatter_jitter');
    const custom = plots.get('custom')!;
    expect(custom.template).toBe('.dvc/plots/area.json');
    expect(custom.spec).toMatchObject({
      title: 'custom',
      width: 420,
      mark: 'area',
      encoding: { x: { field: 'step', title: 'step' }, y: { field: 'acc' }, color: { field: 'series' } },
    });
    expect(custom.spec!.data.values.map((v) => v.acc)).toEqual([0.5, 0.6, 0.7]);

    // and every one of them draws
    const html = await repo.run(['plots', 'show']);
    expect(html.code, html.stderr).toBe(0);
    expect(html.stdout).toContain('7 plots written');
    expect(repo.read('lockstep_plots/index.html').match(/<svg/g)?.length).toBe(7);
  });

  it('a stage plot with a list of definitions gets one panel each; targets name a plot by id or by a file it reads', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:\n  report:\n    cmd: node -e "require('fs').writeFileSync('h.csv', 'step,acc,loss\\\\n0,0.5,0.9\\\\n1,0.7,0.4\\\\n')"\n    plots:\n      - h.csv:\n          - {y: acc, title: Accuracy}\n          - {y: loss, title: Loss, template: scatter}\n`,
    });
    expect((await repo.run(['repro'])).code).toBe(0);
    const r = await repo.run(['plots', 'show', '--json']);
    const plots = (JSON.parse(r.stdout) as PlotJson).plots;
    expect(plots.map((p) => [p.path, p.template, p.spec!.title])).toEqual([
      ['h.csv', 'linear', 'Accuracy'],
      ['h.csv #2', 'scatter', 'Loss'],
    ]);
    repo = evalRepo();
    const t = await repo.run(['plots', 'show', 'ROC', 'eval/plots/sklearn/cm/test.json', '--json']);
    expect((JSON.parse(t.stdout) as PlotJson).plots.map((p) => p.path)).toEqual(['ROC', 'Confusion-Matrix']);
  });

  it('bad definitions are refused by name with their location; bad templates are named', async () => {
    repo = new TempRepo({ 'pipeline.yaml': 'plots:\n  - ROC:\n      y: {a.json: 3}\n      x: [fpr]\n      header: no\n      colour: red\nstages: {}\n' });
    const r = await repo.run(['plots', 'show']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("pipeline.yaml:3:10: error: 'y' of plot 'ROC' must be a field name or a list of them, or a mapping {file: field or [fields]}");
    expect(r.stderr).toContain("pipeline.yaml:4:10: error: 'x' of plot 'ROC' must be a field name or a mapping {file: field}");
    expect(r.stderr).toContain("pipeline.yaml:5:15: error: 'header' of plot 'ROC' must be true or false");
    expect(r.stderr).toMatch(/pipeline\.yaml:6:7: error: unknown field 'colour' in plot 'ROC'/);

    repo = evalRepo();
    repo.write({ '.dvc/plots/area.json': AREA.replace('<DVC_METRIC_PLOT_WIDTH>', '<DVC_METRIC_ROW>') });
    const t = await repo.run(['plots', 'show', 'custom']);
    expect(t.code).toBe(2);
    expect(t.stderr).toContain('.dvc/plots/area.json: error: template .dvc/plots/area.json uses <DVC_METRIC_ROW>, which Lockstep does not fill in');
    repo.write({ 'pipeline.yaml': EVAL_PIPELINE.replace('template: .dvc/plots/area.json', 'template: aera') });
    const u = await repo.run(['plots', 'show', 'custom']);
    expect(u.stderr).toContain("error: plot 'custom': unknown template 'aera'");
  });
});
