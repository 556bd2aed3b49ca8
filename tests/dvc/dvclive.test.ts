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
    const j = JSON.parse((await repo.run(['exp', 'show', '--json'])).stdout) as { experiments: { name: string; params: Record<string, unknown>; metrics: Record<string, number> }[] };
    const fast = j.experiments.find((x) => x.name === 'fast')!;
    expect(fast.metrics).toEqual({ 'train.loss': 0.04, 'train.acc': 0.7, step: 4 });
    // params of both files, the stage's params.yaml and the logged dvclive/params.yaml (those that vary)
    expect(fast.params).toEqual({ 'dvclive/params.yaml:lr': 0.5, 'params.yaml:train.lr': 0.5 });
    const text = await repo.run(['exp', 'show']);
    expect(text.stdout).toMatch(/fast\s.*0\.5\*?\s+0\.5\*?\s+.*0\.04 ★/);
  });

  it('refuses a malformed top-level params or metrics section by name', async () => {
    repo = new TempRepo({ 'pipeline.yaml': 'metrics: dvclive/metrics.json\nparams:\n  - {a: 1}\nstages: {}\n' });
    const r = await repo.run(['metrics', 'show']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("pipeline.yaml:1:10: error: top-level 'metrics' must be a list of file paths");
    expect(r.stderr).toMatch(/pipeline\.yaml:3:5: error: an entry of top-level 'params' must be a file path/);
  });
});
