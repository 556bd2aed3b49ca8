import fs from 'node:fs';
import path from 'node:path';
import { execSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO, TempRepo, collectPageErrors, launchChromium } from '../helpers.js';
import { md5OfFile } from '../../stages/lib/data/checksum.js';
import { rawCsv, repoParams, syntheticRaw } from '../stages/fixtures.js';
import { quickTrainParams, runPipeline } from '../stages/pipeline-run.js';

let repo: TempRepo;
afterEach(() => repo?.cleanup());

const lossCsv = (scale: number) =>
  'epoch,loss,acc\n' + Array.from({ length: 8 }, (_, i) => `${i},${(scale / (i + 1)).toFixed(4)},${(0.5 + i / 20).toFixed(3)}`).join('\n') + '\n';
const scatterJson = JSON.stringify(Array.from({ length: 20 }, (_, i) => ({ x: i, y: (i * 7) % 11 })));
const confusionJson = JSON.stringify(Array.from({ length: 30 }, (_, i) => ({ actual: i % 2, predicted: i % 3 === 0 ? 1 - (i % 2) : i % 2 })));

// Stages write their plot data from params so tests can change it; `train/loss.csv` is kept in git (cache: false).
const PIPELINE = `stages:
  train:
    cmd: node make.js \${scale}
    params: [scale]
    plots:
      - train/loss.csv: {x: epoch, y: loss, title: Training loss, cache: false}
      - train/scatter.json: {template: scatter, x: x, y: y}
      - train/confusion: {template: confusion, x: predicted, y: actual}
`;
const MAKE = `const fs = require('fs'); const s = Number(process.argv[2]);
fs.mkdirSync('train/confusion', { recursive: true });
fs.writeFileSync('train/loss.csv', ${JSON.stringify(lossCsv(1))}.replace(/\\d\\.\\d{4}/g, (v) => (Number(v) * s).toFixed(4)));
fs.writeFileSync('train/scatter.json', ${JSON.stringify(scatterJson)});
fs.writeFileSync('train/confusion/model_a.json', ${JSON.stringify(confusionJson)});
fs.writeFileSync('train/confusion/model_b.json', ${JSON.stringify(confusionJson)});
`;

function setup(): TempRepo {
  return new TempRepo({ 'pipeline.yaml': PIPELINE, 'params.yaml': 'scale: 1\n', 'make.js': MAKE });
}

describe('plots show', () => {
  it('renders every declared plot into one self-contained HTML report with SVG', async () => {
    repo = setup();
    expect((await repo.run(['repro'])).code).toBe(0);
    const r = await repo.run(['plots', 'show']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('3 plots written to lockstep_plots/index.html');
    const html = repo.read('lockstep_plots/index.html');
    expect(html.match(/<svg/g)?.length).toBe(3);
    expect(html).toContain('Training loss');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/); // nothing to run, nothing to fetch
    // both confusion files are drawn, one panel each
    expect(html).toContain('model_a');
    expect(html).toContain('model_b');
  });

  it('--json prints the vega-lite specs with their templates; targets select plots; -o chooses the folder', async () => {
    repo = setup();
    await repo.run(['repro']);
    const r = await repo.run(['plots', 'show', 'train/scatter.json', '--json']);
    const doc = JSON.parse(r.stdout) as { plots: { path: string; template: string; spec: { mark: { type: string } } }[] };
    expect(doc.plots.map((p) => [p.path, p.template])).toEqual([['train/scatter.json', 'scatter']]);
    expect(doc.plots[0]!.spec.mark.type).toBe('point');
    const o = await repo.run(['plots', 'show', 'train/confusion', '-o', 'report']);
    expect(o.code).toBe(0);
    expect(repo.read('report/index.html').match(/<svg/g)?.length).toBe(1);
  });

  it('every template renders (linear, simple, scatter, smooth, bar_horizontal, confusion, confusion_normalized)', async () => {
    const templates = ['linear', 'simple', 'scatter', 'smooth', 'bar_horizontal', 'confusion', 'confusion_normalized'];
    repo = new TempRepo({
      'pipeline.yaml': `plots:\n${templates.map((t) => `  - ${t}.json: {template: ${t}, x: ${t.startsWith('confusion') ? 'predicted' : 'x'}, y: ${t.startsWith('confusion') ? 'actual' : 'y'}}`).join('\n')}\nstages: {}\n`,
      ...Object.fromEntries(templates.map((t) => [`${t}.json`, t.startsWith('confusion') ? confusionJson : scatterJson])),
    });
    const r = await repo.run(['plots', 'show']);
    expect(r.code, r.stderr).toBe(0);
    expect(repo.read('lockstep_plots/index.html').match(/<svg/g)?.length).toBe(7);
  });

  it('bad input gets a clear error: no plots, missing file, unparsable data, unknown template, unknown field, unknown target', async () => {
    repo = new TempRepo({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo\n' });
    let r = await repo.run(['plots', 'show']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no plots are declared in pipeline\.yaml/);

    repo.write({ 'pipeline.yaml': 'plots:\n  - curve.json\nstages: {}\n' });
    r = await repo.run(['plots', 'show']);
    expect(r.stderr).toMatch(/no data for plot 'curve\.json': 'curve\.json' does not exist/);

    repo.write({ 'curve.json': '[{"x": 1, "y": 2},\n {"x": 2 "y": 3}]' });
    r = await repo.run(['plots', 'show']);
    expect(r.stderr).toMatch(/^curve\.json:2: error: cannot parse plot data curve\.json/m);

    repo.write({ 'curve.json': scatterJson, 'pipeline.yaml': 'plots:\n  - curve.json: {template: scater}\nstages: {}\n' });
    r = await repo.run(['plots', 'show']);
    expect(r.stderr).toMatch(/plot 'curve\.json': unknown template 'scater'; did you mean 'scatter'\?/);

    repo.write({ 'pipeline.yaml': 'plots:\n  - curve.json: {x: x, y: accuracy}\nstages: {}\n' });
    r = await repo.run(['plots', 'show']);
    expect(r.stderr).toMatch(/plot 'curve\.json': y field 'accuracy' is not in the data/);
    expect(r.stderr).toMatch(/fields: x, y/);

    r = await repo.run(['plots', 'show', 'curve.jsn']);
    expect(r.stderr).toMatch(/'curve\.jsn' is not a declared plot; did you mean 'curve\.json'\?/);
    for (const out of [r.stderr]) expect(out).not.toMatch(/\n\s+at /);
  });
});

describe('plots diff', () => {
  it("overlays a git revision and the workspace, reading cached plots through that revision's lock", async () => {
    repo = setup();
    execSync('git init -q && git config user.email t@t && git config user.name t', { cwd: repo.dir });
    await repo.run(['repro']);
    execSync('git add -A && git commit -qm v1', { cwd: repo.dir });
    repo.write({ 'params.yaml': 'scale: 3\n' });
    await repo.run(['repro']);
    const r = await repo.run(['plots', 'diff', 'HEAD', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { revisions: string[]; plots: { path: string; spec: { data: { values: { series: string; loss?: number }[] } } }[] };
    expect(doc.revisions).toEqual(['HEAD']);
    const both = await repo.run(['plots', 'diff', 'HEAD', 'workspace', '--json']);
    const d2 = JSON.parse(both.stdout) as typeof doc;
    const loss = d2.plots.find((p) => p.path === 'train/loss.csv')!.spec.data.values;
    expect(new Set(loss.map((v) => v.series))).toEqual(new Set(['HEAD', 'workspace']));
    expect(loss.find((v) => v.series === 'HEAD')!.loss).toBe(1);
    expect(loss.find((v) => v.series === 'workspace')!.loss).toBe(3);
    // train/confusion is cached, not in git: it comes from the cache through HEAD's pipeline.lock.
    const conf = d2.plots.find((p) => p.path === 'train/confusion')!.spec.data.values;
    expect(new Set(conf.map((v) => v.series))).toEqual(new Set(['HEAD · model_a', 'HEAD · model_b', 'workspace · model_a', 'workspace · model_b']));
    const html = await repo.run(['plots', 'diff']);
    expect(html.code).toBe(0);
    expect(repo.read('lockstep_plots/index.html')).toContain('Comparing HEAD, workspace');
    const bad = await repo.run(['plots', 'diff', 'nosuchrev']);
    expect(bad.stderr).toMatch(/unknown git revision 'nosuchrev'/);
  });

  it('--exp overlays experiments, whose plots come from the cache', async () => {
    repo = setup();
    await repo.run(['repro']);
    expect((await repo.run(['exp', 'run', '-S', 'scale=2', '--name', 'double'])).code).toBe(0);
    expect((await repo.run(['exp', 'run', '-S', 'scale=5', '--name', 'five'])).code).toBe(0);
    const r = await repo.run(['plots', 'diff', '--exp', 'double', '--exp', 'five', '--json', '-t', 'train/loss.csv']);
    expect(r.code, r.stderr).toBe(0);
    const values = (JSON.parse(r.stdout) as { plots: { spec: { data: { values: { series: string; loss: number }[] } } }[] }).plots[0]!.spec.data.values;
    expect(values.find((v) => v.series === 'double')!.loss).toBe(2);
    expect(values.find((v) => v.series === 'five')!.loss).toBe(5);
    expect((await repo.run(['plots', 'diff', '--exp', 'nope'])).stderr).toMatch(/no experiment named 'nope'/);
  });
});

describe('dag --html', () => {
  it('shows every stage with its state and last duration', async () => {
    repo = new TempRepo({
      'pipeline.yaml':
        'stages:\n  a:\n    cmd: echo a > a.txt\n    outs: [a.txt]\n  b:\n    cmd: cat a.txt > b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n  c:\n    cmd: echo c > c.txt\n    outs: [c.txt]\n',
    });
    await repo.run(['repro', 'b']);
    repo.write({ 'a.txt': 'edited\n' });
    const r = await repo.run(['dag', '--html', '-o', 'graph.html']);
    expect(r.code, r.stderr).toBe(0);
    const html = repo.read('graph.html');
    expect(html).toMatch(/data-stage="a" data-state="stale"/);
    expect(html).toMatch(/data-stage="b" data-state="stale"/);
    expect(html).toMatch(/data-stage="c" data-state="never run"/);
    expect(html).toMatch(/out modified: a\.txt/);
    expect(html).toMatch(/stale · last \d+ ms/);
    expect(html).toContain('3 stages: 0 up to date, 2 stale, 1 never run, 0 frozen');
    expect((await repo.run(['dag', '--html', '--dot'])).stderr).toMatch(/choose one of --mermaid, --dot, --html/);
  });
});

describe('the report in a real browser', () => {
  it("headless Chromium opens the lead pipeline's plot report and the DAG with no console errors; the SVG plots are there", async () => {
    repo = new TempRepo({});
    fs.writeFileSync(repo.path('source.csv'), rawCsv(syntheticRaw(600, 3)));
    await runPipeline(repo.dir, { ...quickTrainParams(repoParams()), ingest: { source: 'source.csv', md5: md5OfFile(repo.path('source.csv')) } });
    fs.copyFileSync(path.join(REPO, 'pipeline.yaml'), repo.path('pipeline.yaml')); // the lead pipeline's own plot declarations
    fs.copyFileSync(path.join(REPO, 'params.yaml'), repo.path('params.yaml'));
    fs.symlinkSync(path.join(REPO, 'stages'), repo.path('stages'));
    const shown = await repo.run(['plots', 'show']);
    expect(shown.code, shown.stderr).toBe(0);
    const dag = await repo.run(['dag', '--html']);
    expect(dag.code, dag.stderr).toBe(0);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
      const errors = collectPageErrors(page);
      await page.goto(`file://${repo.path('lockstep_plots/index.html')}`);
      expect(await page.locator('section svg').count()).toBe(3);
      for (const title of ['data/plots/roc', 'data/plots/pr', 'data/plots/confusion'])
        await expect(page.locator('h2', { hasText: title }).count()).resolves.toBe(1);
      // axis titles drawn by vega, and one confusion panel per model
      const text = await page.locator('main').innerText();
      for (const t of [
        'ROC curve (test set)',
        'false positive rate',
        'true positive rate',
        'recall',
        'precision',
        'logistic_regression',
        'xgboost_rf',
        'xgboost_boost',
      ])
        expect(text).toContain(t);
      const box = await page.locator('section svg').first().boundingBox();
      expect(box!.width).toBeGreaterThan(300);
      fs.mkdirSync(path.join(REPO, 'tests', 'artifacts'), { recursive: true });
      await page.screenshot({ path: path.join(REPO, 'tests', 'artifacts', 'plots-report.png'), fullPage: true });
      await page.goto(`file://${repo.path('lockstep_plots/dag.html')}`);
      expect(await page.locator('g.stage').count()).toBe(5);
      await page.screenshot({ path: path.join(REPO, 'tests', 'artifacts', 'dag-report.png'), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 120_000);
});
