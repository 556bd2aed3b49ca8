import fs from 'node:fs';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { LOCKSTEP, REPO, TempRepo, collectPageErrors, launchChromium } from '../helpers.js';
import { commit, seedModels, uiRepo } from './fixture.js';
import { GRID_6, leadGridRepo } from '../exp/lead-grid-fixture.js';

/**
 * `lockstep ui` in real headless Chromium, on a synthetic pipeline with a
 * small grid of experiments, a git commit, training runs and a registry.
 */
let repo: TempRepo;
let server: ResultPromise;
let base: string;
let browser: Browser;
const ARTIFACTS = path.join(REPO, 'tests', 'artifacts');

/** Start `lockstep ui --port 0` in `dir` and return its URL. The caller kills the returned process. */
async function startUi(dir: string): Promise<{ proc: ResultPromise; url: string }> {
  const proc = execa(process.execPath, [LOCKSTEP, 'ui', '--port', '0'], { cwd: dir, reject: false, stdin: 'ignore', env: { NO_COLOR: '1' } });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /http:\/\/127\.0\.0\.1:\d+/.exec(out);
      if (m) resolve(m[0]);
    });
    void proc.then((r) => reject(new Error(`ui exited: ${r.stderr}`)));
  });
  return { proc, url };
}

async function newPage(errors: string[]): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  collectPageErrors(page, errors);
  // Nothing outside the app: no CDN, no fonts, no telemetry.
  page.on('request', (r) => !r.url().startsWith(base) && !r.url().startsWith('data:') && errors.push(`external request: ${r.url()}`));
  return page;
}

/** A screenshot in tests/artifacts/; with UPDATE_DOCS_SCREENSHOTS=1 also the README's copy under docs/ (kept out of ordinary runs so tests leave the tree clean). */
function shot(page: Page, name: string, docs?: string): Promise<unknown> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const toDocs = docs && process.env.UPDATE_DOCS_SCREENSHOTS === '1';
  return Promise.all([
    page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true }),
    ...(toDocs ? [page.screenshot({ path: path.join(REPO, 'docs', docs), fullPage: true })] : []),
  ]);
}

beforeAll(async () => {
  repo = uiRepo();
  expect((await repo.run(['repro'])).code).toBe(0);
  commit(repo, 'base');
  expect((await repo.run(['exp', 'run', '-S', 'train.lr=0.1,0.2', '-S', 'train.depth=2,4', '--queue'])).code).toBe(0);
  const all = await repo.run(['exp', 'run', '--run-all', '-j', '2']);
  expect(all.code, all.stdout + all.stderr).toBe(0);
  expect((await repo.run(['exp', 'run', '-S', 'train.lr=0.5', '-n', 'later', '--queue'])).code).toBe(0);
  await seedModels(repo);
  ({ proc: server, url: base } = await startUi(repo.dir));
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  await server;
  repo?.cleanup();
});

describe('lockstep ui', () => {
  it('experiments: sort, filter, choose columns, compare two with both series in one interactive plot; the URL keeps the state', async () => {
    const errors: string[] = [];
    const page = await newPage(errors);
    await page.goto(`${base}/experiments`);
    const rows = page.locator('#exps tbody tr');
    await expect.poll(() => rows.count()).toBe(7); // workspace, HEAD, 4 done, 1 queued
    const names = () => page.locator('#exps tbody tr td:nth-child(2)').allInnerTexts();
    expect(await names()).toEqual(['workspace', 'HEAD', 'exp-1', 'exp-2', 'exp-3', 'exp-4', 'later']);
    // default columns: the params that differ and the result metrics that are not constant (no test.n, no train twin)
    const heads = await page.locator('#exps thead th').allInnerTexts();
    expect(heads).toEqual(expect.arrayContaining(['train.depth', 'train.lr', 'test.accuracy ↑', 'test.fn ↓', 'loss ↓']));
    expect(heads.join()).not.toMatch(/test\.n|train\.accuracy|prepare\.rows/);
    // the queued experiment shows the value it was queued with, highlighted as differing from the workspace
    const later = page.locator('#exps tbody tr[data-name=later]');
    const lrIndex = heads.indexOf('train.lr') + 1;
    await expect.poll(() => later.locator(`td:nth-child(${lrIndex})`).innerText()).toBe('0.5');
    expect(await later.locator(`td:nth-child(${lrIndex})`).getAttribute('class')).toContain('differs');
    // best accuracy (higher) and fewest false negatives (lower) are on exp-3 (lr 0.2, depth 2)
    const accIndex = heads.indexOf('test.accuracy ↑') + 1;
    const fnIndex = heads.indexOf('test.fn ↓') + 1;
    for (const i of [accIndex, fnIndex])
      expect(await page.locator(`#exps tbody tr[data-name=exp-3] td:nth-child(${i})`).getAttribute('class')).toContain('best');
    expect(await page.locator('td.best').count()).toBe(3); // accuracy, fn, loss: one each

    // sort by accuracy: best first; click again: reversed
    await page.locator('#exps thead th', { hasText: 'test.accuracy' }).click();
    expect((await names())[0]).toBe('exp-3');
    expect(page.url()).toContain('sort=m%3Atest.accuracy');
    await page.locator('#exps thead th', { hasText: 'test.accuracy' }).click();
    expect(page.url()).toContain('dir=asc');
    expect((await names()).slice(-1)[0]).toBe('later'); // rows without a value stay last

    // filter by an expression, then by status
    await page.fill('#filter', 'test.accuracy > 0.7');
    expect((await names()).sort()).toEqual(['exp-3', 'exp-4']);
    await page.fill('#filter', '');
    await page.selectOption('#status-filter', 'queued');
    expect(await names()).toEqual(['later']);
    await page.selectOption('#status-filter', '');

    // choose columns: add test.n, drop loss
    await page.click('#cols summary');
    await page.check('#col-list input[data-col="m:test.n"]');
    await page.uncheck('#col-list input[data-col="m:loss"]');
    await page.click('#cols summary');
    const heads2 = await page.locator('#exps thead th').allInnerTexts();
    expect(heads2).toContain('test.n');
    expect(heads2.join()).not.toContain('loss');
    expect(decodeURIComponent(page.url())).toContain('cols=p:train.depth,p:train.lr,m:test.accuracy,m:test.fn,m:test.n');

    // compare exp-1 and exp-3: diff and both series in the loss plot
    await page.check('#exps tbody tr[data-name=exp-1] input');
    await page.check('#exps tbody tr[data-name=exp-3] input');
    await page.click('#compare');
    await page.locator('.plot svg').first().waitFor();
    const panel = await page.locator('#comparison').innerText();
    expect(panel).toContain('params.yaml:train.lr');
    expect(panel).toContain('metrics.json:test.accuracy');
    expect(panel).not.toContain('train.depth'); // the same in both
    const legend = await page
      .locator('.plot svg .role-legend')
      .innerText()
      .catch(async () => page.locator('.plot svg').first().textContent());
    expect(legend).toContain('exp-1');
    expect(legend).toContain('exp-3');
    // two lines, one per experiment
    expect(await page.locator('.plot svg .mark-line path').count()).toBe(2);
    // tooltip on a point
    const point = page.locator('.plot svg .mark-symbol path').first();
    await point.hover({ force: true });
    await expect.poll(() => page.locator('#tooltip').isVisible()).toBe(true);
    expect(await page.locator('#tooltip').innerText()).toMatch(/loss/);
    await page.mouse.move(1, 1);
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page, 'ui-experiments.png', 'ui-experiments.png');
    // series toggle: clicking a legend entry fades the other series
    await page.locator('.plot svg .role-legend-symbol path').first().click({ force: true });
    await expect
      .poll(async () =>
        (
          await page
            .locator('.plot svg .mark-line path')
            .evaluateAll((ps) =>
              ps.map((p) => Number(getComputedStyle(p).opacity ?? 1) || Number(p.getAttribute('opacity') ?? p.getAttribute('stroke-opacity') ?? 1)),
            )
        ).some((o) => o < 0.5),
      )
      .toBe(true);
    await shot(page, 'ui-experiments-series-picked.png');

    // the URL is the state: a new page opens sorted, filtered columns, the same comparison
    const url = page.url();
    expect(url).toContain('sel=exp-1%2Cexp-3');
    const again = await newPage(errors);
    await again.goto(url);
    await again.locator('.plot svg').first().waitFor();
    expect(await again.locator('#exps thead th').allInnerTexts()).toEqual(await page.locator('#exps thead th').allInnerTexts());
    expect(await again.locator('#exps tbody tr.selected').count()).toBe(2);
    expect(errors).toEqual([]);
  });

  it('pipeline: the DAG with states and why; a repro in another process shows a stage running, then done', async () => {
    const errors: string[] = [];
    const page = await newPage(errors);
    repo.write({ 'params.yaml': repo.read('params.yaml').replace('lr: 0.1 ', 'lr: 0.3 ') });
    await page.goto(`${base}/pipeline?stage=train`);
    await page.locator('#dag svg').waitFor();
    expect(await page.locator('#dag g.stage').count()).toBe(3);
    const badge = (s: string) => page.locator(`#stages tr[data-stage="${s}"] .badge`);
    expect(await badge('prepare').innerText()).toBe('up to date');
    expect(await badge('train').innerText()).toBe('stale');
    expect(await page.locator('#detail').innerText()).toContain('param changed: train.lr: 0.1 -> 0.3');
    expect(await page.locator('#stages').innerText()).toMatch(/train\s+stale\s+[\d.]+ m?s done/);

    fs.rmSync(repo.path('gate'), { force: true });
    // every state the train box shows, in order, however briefly
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { seen: string[] }).seen = seen;
      const g = document.querySelector('#dag g.stage[data-stage=train]')!;
      new MutationObserver(() => seen.push(g.getAttribute('data-live') ?? '')).observe(g, { attributes: true, attributeFilter: ['data-live'] });
    });
    const repro = execa(process.execPath, [LOCKSTEP, 'repro'], { cwd: repo.dir, reject: false, stdin: 'ignore', env: { UI_GATE: '1' } });
    try {
      await expect.poll(() => badge('train').innerText(), { timeout: 20_000 }).toBe('running');
      expect(await page.locator('#dag g.stage[data-stage=train]').getAttribute('data-live')).toBe('running');
      expect(await page.locator('#run').innerText()).toContain('running train');
      await shot(page, 'ui-pipeline-running.png', 'ui-pipeline.png');
      fs.writeFileSync(repo.path('gate'), '');
      // finished: done live, then the states recomputed from disk
      await expect.poll(() => page.evaluate(() => (window as unknown as { seen: string[] }).seen.includes('done')), { timeout: 20_000 }).toBe(true);
      expect(await page.evaluate(() => (window as unknown as { seen: string[] }).seen.filter((x, i, a) => x && x !== a[i - 1]))).toEqual(['running', 'done']);
      await expect.poll(() => badge('report').innerText(), { timeout: 20_000 }).toBe('up to date');
      expect(await badge('train').innerText()).toBe('up to date');
      expect(await page.locator('#run').innerText()).toContain('last repro finished');
      expect((await repro).exitCode).toBe(0);
    } finally {
      repro.kill('SIGTERM');
      fs.writeFileSync(repo.path('gate'), '');
    }
    await shot(page, 'ui-pipeline-done.png');
    expect(page.url()).toContain('stage=train');
    expect(errors).toEqual([]);
  });

  it('runs and models: lists runs and versions; promoting from the page writes registry/index.json; cancel changes nothing', async () => {
    const errors: string[] = [];
    const page = await newPage(errors);
    await page.goto(`${base}/models`);
    await page.locator('#registry tbody tr').first().waitFor();
    await expect.poll(() => page.locator('#runs tbody tr').count()).toBe(2);
    expect(await page.locator('#runs').innerText()).toContain('checksum-1');
    await page.click('[data-show-run]');
    expect(await page.locator('#run-detail').innerText()).toContain('abcdef1234567890');
    expect(page.url()).toMatch(/run=\d{8}T/);
    const index = () => JSON.parse(repo.read('registry/index.json')) as { versions: { version: number; stage: string }[] };
    const stages = () => Object.fromEntries(index().versions.map((v) => [v.version, v.stage]));
    expect(stages()).toEqual({ 1: 'Production', 2: 'Staging' });

    const promote = page.locator('tr[data-version="2"] button[data-to=Production]');
    await promote.click();
    expect(await page.locator('#confirm-text').innerText()).toBe('Move v2 (model-2) from Staging to Production? v1 leaves Production and is archived.');
    await page.click('#confirm-cancel');
    expect(stages()).toEqual({ 1: 'Production', 2: 'Staging' });
    await promote.click();
    await page.click('#confirm-ok');
    await expect.poll(() => page.locator('tr[data-version="2"] .badge').innerText()).toBe('Production');
    expect(stages()).toEqual({ 1: 'Archived', 2: 'Production' });
    expect(await page.locator('tr[data-version="1"] .badge').innerText()).toBe('Archived');
    await shot(page, 'ui-models.png', 'ui-models.png');
    expect(errors).toEqual([]);
  });

  it('client mistakes get a 4xx with a message, never a 500', async () => {
    const get = async (u: string, init?: RequestInit) => {
      const r = await fetch(base + u, init);
      return [r.status, ((await r.json()) as { error: string }).error] as const;
    };
    const post = (u: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
      get(u, { method: 'POST', body, headers });
    expect(await get('/api/compare?names=exp-1,nope')).toEqual([404, "no experiment named 'nope'"]);
    expect(await get('/api/compare?names=exp-1')).toEqual([400, 'choose between 2 and 12 rows to compare']);
    expect((await get('/nowhere'))[0]).toBe(404);
    expect((await get('/static/..%2F..%2Fpackage.json'))[0]).toBe(404);
    expect((await get('/vendor/nothing.js'))[0]).toBe(404);
    expect(await post('/api/registry/x/transition', '{"to":"Staging"}')).toEqual([400, "'x' is not a version number"]);
    expect(await post('/api/registry/9/transition', '{"to":"Staging"}')).toEqual([404, 'no model version 9 in the registry']);
    expect((await post('/api/registry/1/transition', '{"to":"Nowhere"}'))[0]).toBe(400);
    expect((await post('/api/registry/1/transition', '{"to":"Production"}'))[0]).toBe(409); // only from Staging, as `leads registry promote`
    expect((await post('/api/registry/1/transition', '{bad json'))[0]).toBe(400);
    expect((await post('/api/registry/1/transition', '{}'))[0]).toBe(400);
    expect((await post('/api/registry/1/transition', 'to=Staging', { 'content-type': 'application/x-www-form-urlencoded' }))[0]).toBe(415);
    expect((await post('/api/registry/1/transition', '{"to":"Staging"}', { 'content-type': 'application/json', origin: 'http://elsewhere.example' }))[0]).toBe(
      403,
    );
    expect(JSON.parse(repo.read('registry/index.json')).versions.find((v: { version: number }) => v.version === 1).stage).toBe('Archived');
  });
});

describe('lockstep ui on the lead pipeline', () => {
  it("the experiments page shows a grid's differing params and the selected model's metrics, the pipeline page its five stages", async () => {
    const lead = leadGridRepo(GRID_6);
    let ui: { proc: ResultPromise; url: string } | undefined;
    try {
      ui = await startUi(lead.dir);
      base = ui.url;
      const errors: string[] = [];
      const page = await newPage(errors);
      await page.goto(`${ui.url}/experiments?sort=m%3Adata%2Fmetrics%2Fselected.json%3Atest.f1_weighted&dir=desc`);
      await page.locator('#exps tbody tr').nth(6).waitFor();
      const heads = await page.locator('#exps thead th').allInnerTexts();
      expect(heads.slice(4, 6)).toEqual(['split.seed', 'train.cv']);
      expect(heads).toContain('test.f1_weighted ↑');
      expect(heads).toContain('test.fn ↓');
      expect(heads.length).toBeLessThan(25);
      // sorted best first: the first experiment row holds the ★ of test.f1_weighted
      const col = heads.indexOf('test.f1_weighted ↑') + 1;
      expect(await page.locator(`#exps tbody tr:nth-child(1) td:nth-child(${col})`).getAttribute('class')).toContain('best');
      await page.goto(`${ui.url}/pipeline`);
      await page.locator('#dag svg').waitFor();
      expect(await page.locator('#dag g.stage').count()).toBe(5);
      expect(await page.locator('#stages tr[data-stage=ingest] .badge').innerText()).toBe('never run'); // no pipeline.lock in this copy
      expect(errors).toEqual([]);
    } finally {
      ui?.proc.kill('SIGTERM');
      await ui?.proc;
      lead.cleanup();
    }
  });
});

describe('lockstep ui with 1,000 experiments', () => {
  it('loads the experiments page in under a second', async () => {
    const big = uiRepo();
    let ui: { proc: ResultPromise; url: string } | undefined;
    try {
      const params = { 'params.yaml': { 'prepare.rows': 100, 'train.lr': 0.1, 'train.depth': 3 } };
      for (let i = 0; i < 1000; i++) {
        const lr = 0.01 * (i % 50);
        const depth = 1 + (i % 7);
        const rec = {
          name: `exp-${i + 1}`,
          status: i % 97 === 0 ? 'failed' : 'success',
          createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
          overrides: { 'params.yaml': { 'train.lr': lr, 'train.depth': depth } },
          params: { 'params.yaml': { ...params['params.yaml'], 'train.lr': lr, 'train.depth': depth } },
          metrics: {
            'metrics.json': { 'test.accuracy': 0.6 + lr - depth / 100, 'test.fn': 30 + depth, 'test.n': 100, 'train.accuracy': 0.7 + lr, loss: 1 / (1 + lr) },
          },
        };
        big.write({ [`.lockstep/exps/exp-${i + 1}.json`]: JSON.stringify(rec) });
      }
      ui = await startUi(big.dir);
      base = ui.url;
      const errors: string[] = [];
      const page = await newPage(errors);
      // warm the server once (a first request loads its modules), then measure what a user sees
      await (await fetch(`${ui.url}/api/experiments`)).json();
      const times: number[] = [];
      const breakdown: unknown[] = [];
      for (let k = 0; k < 3; k++) {
        await page.goto(`${ui.url}/experiments?sort=m%3Atest.accuracy&dir=desc`);
        await page.locator('#exps tbody tr').nth(1000).waitFor(); // the workspace and 1,000 experiments (no commit yet: no HEAD row)
        // from navigation start to the table on screen, as the page measures it
        const t = await page.evaluate(() => ({
          table: performance.getEntriesByName('experiments-table')[0]!.startTime,
          api: performance
            .getEntriesByType('resource')
            .filter((e) => e.name.includes('/api/experiments'))
            .map((e) => (e as PerformanceResourceTiming).responseEnd - e.startTime)[0],
          dom: (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).domContentLoadedEventEnd,
        }));
        times.push(Math.round(t.table));
        breakdown.push(t);
      }
      const ms = Math.min(...times);
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      fs.writeFileSync(path.join(ARTIFACTS, 'ui-load-1000.json'), JSON.stringify({ experiments: 1000, loadMs: times, breakdown }, null, 1));
      console.log(`experiments page with 1,000 experiments: ${times.join(', ')} ms`, JSON.stringify(breakdown));
      expect(ms).toBeLessThan(1000);
      expect(errors).toEqual([]);
    } finally {
      ui?.proc.kill('SIGTERM');
      await ui?.proc;
      big.cleanup();
    }
  });
});
