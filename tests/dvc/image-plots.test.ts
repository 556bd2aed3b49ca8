import fs from 'node:fs';
import { execSync } from 'node:child_process';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { TempRepo, collectPageErrors, launchChromium } from '../helpers.js';

let repo: TempRepo;
afterEach(() => repo?.cleanup());

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

/** A real PNG (RGB, w×h, one colour), so a browser decodes it. */
function png(w: number, h: number, rgb: [number, number, number]): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const raw = Buffer.concat(Array.from({ length: h }, () => Buffer.from([0, ...Array.from({ length: w }, () => rgb).flat()])));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20" fill="#3a7"/></svg>';

// DVCLive logs images under dvclive/plots/images/; example-get-started plots eval/importance.png.
const PIPELINE = `plots:
  - eval/importance.png
  - dvclive/plots/images
  - eval/curve.svg
  - eval/roc.json: {x: fpr, y: tpr}
  - eval/broken.json
  - eval/absent.csv
  - eval/cols.csv: {x: epoch, y: accuracy}
stages:
  images:
    cmd: node images.js
    deps: [images.js]
    outs: [dvclive/plots/images]
`;

function imageRepo(): TempRepo {
  const r = new TempRepo({
    'pipeline.yaml': PIPELINE,
    'images.js': `const fs = require('fs'); fs.mkdirSync('dvclive/plots/images', { recursive: true });
fs.writeFileSync('dvclive/plots/images/epoch0.png', Buffer.from(${JSON.stringify(png(6, 4, [200, 30, 30]).toString('base64'))}, 'base64'));
fs.writeFileSync('dvclive/plots/images/epoch1.gif', Buffer.from(${JSON.stringify(GIF.toString('base64'))}, 'base64'));
`,
    'eval/curve.svg': SVG,
    'eval/roc.json': JSON.stringify([
      { fpr: 0, tpr: 0 },
      { fpr: 0.5, tpr: 0.8 },
      { fpr: 1, tpr: 1 },
    ]),
    'eval/broken.json': '[{"fpr": 0, "tpr": 0},\n {"fpr": 1 "tpr": 1}]',
    'eval/cols.csv': 'epoch,acc\n0,0.5\n1,0.6\n',
  });
  fs.writeFileSync(r.path('eval/importance.png'), png(8, 8, [20, 60, 200])); // binary: not through the text helper
  return r;
}

type Json = { plots: { path: string; template?: string; error?: string; missing?: string; images?: { path: string; rev: string }[]; spec?: unknown }[] };

describe('image plots and broken plots', () => {
  it('images are shown inline; each broken plot gets its own panel and the rest of the report is drawn', async () => {
    repo = imageRepo();
    expect((await repo.run(['repro'])).code).toBe(0);
    const r = await repo.run(['plots', 'show']);
    // bad input is still bad input: exit 2, one error line per plot, but the report is written;
    // a plot whose file was never made is only a warning, as in DVC
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('4 plots written to lockstep_plots/index.html; 1 without data yet; 2 could not be read (see the report)');
    expect(r.stderr).toMatch(/^eval\/broken\.json:2: error: cannot parse plot data eval\/broken\.json/m);
    expect(r.stderr).toContain("warning: no data for plot 'eval/absent.csv': 'eval/absent.csv' does not exist");
    expect(r.stderr).toContain("error: plot 'eval/cols.csv': y field 'accuracy' is not in the data of eval/cols.csv");
    expect(r.stderr).not.toMatch(/\n\s+at |internal error/);
    const html = repo.read('lockstep_plots/index.html');
    expect(html.match(/<img src="data:image\/png;base64,/g)?.length).toBe(2);
    expect(html.match(/<img src="data:image\/gif;base64,/g)?.length).toBe(1);
    expect(html.match(/<img src="data:image\/svg\+xml;base64,/g)?.length).toBe(1);
    expect(html).toContain('dvclive/plots/images/epoch0.png');
    expect(html.match(/class="plot-error"/g)?.length).toBe(2);
    expect(html).toContain('not shown: no data for plot &#39;eval/absent.csv&#39;');
    expect(html.match(/<svg/g)?.length).toBe(1); // the ROC chart
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);

    const j = await repo.run(['plots', 'show', '--json']);
    expect(j.code).toBe(2);
    const doc = JSON.parse(j.stdout) as Json;
    expect(doc.plots.find((p) => p.path === 'dvclive/plots/images')).toMatchObject({
      template: 'image',
      images: [{ path: 'dvclive/plots/images/epoch0.png' }, { path: 'dvclive/plots/images/epoch1.gif' }],
    });
    expect(doc.plots.find((p) => p.path === 'eval/broken.json')!.error).toMatch(/cannot parse plot data/);
    expect(doc.plots.find((p) => p.path === 'eval/absent.csv')).toEqual({
      path: 'eval/absent.csv',
      missing: "no data for plot 'eval/absent.csv': 'eval/absent.csv' does not exist (run the stage that makes it: lockstep repro)",
    });
  });

  it('headless Chromium shows the images decoded, the error panels, and logs no console errors', async () => {
    repo = imageRepo();
    expect((await repo.run(['repro'])).code).toBe(0);
    await repo.run(['plots', 'show']);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const errors = collectPageErrors(page);
      await page.goto(`file://${repo.path('lockstep_plots/index.html')}`);
      const sizes = await page
        .locator('.plot-image img')
        .evaluateAll((imgs) => imgs.map((i) => [(i as HTMLImageElement).alt, (i as HTMLImageElement).naturalWidth, (i as HTMLImageElement).naturalHeight]));
      expect(sizes).toEqual([
        ['eval/importance.png', 8, 8],
        ['dvclive/plots/images/epoch0.png', 6, 4],
        ['dvclive/plots/images/epoch1.gif', 1, 1],
        ['eval/curve.svg', 40, 20],
      ]);
      expect(await page.locator('section.failed').count()).toBe(2);
      expect(await page.locator('section.failed h2').allInnerTexts()).toEqual(['eval/broken.json', 'eval/cols.csv']);
      expect(await page.locator('section svg').count()).toBe(1);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);

  it('plots diff shows an image per revision: git HEAD and the workspace', async () => {
    repo = imageRepo();
    execSync('git init -q && git config user.email t@t && git config user.name t && git add -A && git commit -qm v1', { cwd: repo.dir });
    fs.writeFileSync(repo.path('eval/importance.png'), png(3, 3, [0, 0, 0]));
    const r = await repo.run(['plots', 'diff', '-t', 'eval/importance.png', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [p] = (JSON.parse(r.stdout) as Json).plots;
    expect(p!.images!.map((i) => i.rev)).toEqual(['HEAD', 'workspace']);
    const h = await repo.run(['plots', 'diff', '-t', 'eval/importance.png']);
    expect(h.code).toBe(0);
    const html = repo.read('lockstep_plots/index.html');
    const srcs = [...html.matchAll(/<img src="(data:image\/png;base64,[^"]+)"/g)].map((m) => Buffer.from(m[1]!.split(',')[1]!, 'base64'));
    expect(srcs.map((b) => b.readUInt32BE(16))).toEqual([8, 3]); // widths from each revision's IHDR
    expect(html).toContain('HEAD: eval/importance.png');
  });
});
