import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { toDecl } from '../../runner/plots/decls.js';
import { plotContent } from '../../runner/plots/series.js';
import { vegaLiteSpec } from '../../runner/plots/templates.js';
import { parsePlotFile } from '../../runner/plots/data.js';
import type { PlotFile, PlotRevision } from '../../runner/plots/sources.js';
import { findPointers, parsePointer } from '../../runner/tracked.js';
import { UserError } from '../../runner/errors.js';

/** A revision made of in-memory files, so plot layout is tested without a repository. */
function memRev(name: string, files: Record<string, string>): PlotRevision {
  return {
    name,
    files(p) {
      const hits = Object.keys(files)
        .filter((f) => f === p || f.startsWith(`${p}/`))
        .sort();
      return hits.length ? hits.map((f): PlotFile => ({ path: f, bytes: Buffer.from(files[f]!) })) : { missing: `'${p}' does not exist` };
    },
  };
}

let tmp: string | undefined;
afterEach(() => tmp && fs.rmSync(tmp, { recursive: true, force: true }));

describe('plot definitions (toDecl)', () => {
  it('a path with x/y strings is its own source; y lists stay lists', () => {
    expect(toDecl('eval/h.csv', { x: 'step', y: ['acc', 'loss'], title: 'T' })).toEqual({
      id: 'eval/h.csv',
      sources: [{ path: 'eval/h.csv', x: 'step', y: ['acc', 'loss'] }],
      props: { title: 'T' },
    });
  });
  it('a y map names the files; x may be per file; the id only titles the plot', () => {
    expect(toDecl('ROC', { x: { 'a.json': 'fpr', 'b.json': 'false_pos' }, y: { 'a.json': 'tpr', './b.json': ['tpr', 'tp'] }, template: 'simple' })).toEqual({
      id: 'ROC',
      sources: [
        { path: 'a.json', x: 'fpr', y: ['tpr'] },
        { path: 'b.json', y: ['tpr', 'tp'] }, // './b.json' has no x entry under that spelling
      ],
      props: { template: 'simple' },
    });
  });
  it('an x map alone names the files, each with its default y', () => {
    expect(toDecl('P', { x: { 'a.csv': 'epoch' } }).sources).toEqual([{ path: 'a.csv', x: 'epoch' }]);
  });
});

describe('plot rows (plotContent)', () => {
  const root = os.tmpdir();
  it('one file, one column: original field names, series = revision', () => {
    const c = plotContent(root, toDecl('a.csv', { x: 'e', y: 'v' }), [memRev('workspace', { 'a.csv': 'e,v\n0,1\n1,4\n' })]);
    expect(c.rows.map((r) => [r.e, r.v, r.series])).toEqual([
      [0, 1, 'workspace'],
      [1, 4, 'workspace'],
    ]);
    expect(c.props).toMatchObject({ x: 'e', y: 'v', xLabel: 'e', yLabel: 'v' });
  });
  it('two revisions × a folder of files with different columns: inferred y, series name both', () => {
    const a = memRev('HEAD', { 'm/loss.tsv': 'step\tloss\n0\t0.9\n', 'm/acc.tsv': 'step\tacc\n0\t0.5\n' });
    const b = memRev('workspace', { 'm/loss.tsv': 'step\tloss\n0\t0.7\n', 'm/acc.tsv': 'step\tacc\n0\t0.6\n' });
    const c = plotContent(root, toDecl('m', {}), [a, b]);
    expect(c.props!.y).toBe('dvc_inferred_y_value');
    expect(c.rows.map((r) => `${r.series}=${r.dvc_inferred_y_value}`)).toEqual([
      'HEAD · acc=0.5',
      'HEAD · loss=0.9',
      'workspace · acc=0.6',
      'workspace · loss=0.7',
    ]);
  });
  it('a missing column names the file and lists the fields; a revision without the file is only noted', () => {
    expect(() => plotContent(root, toDecl('a.csv', { y: 'nope' }), [memRev('workspace', { 'a.csv': 'x,y\n1,2\n' })])).toThrow(
      /y field 'nope' is not in the data of a\.csv/,
    );
    const c = plotContent(root, toDecl('a.csv', {}), [memRev('HEAD', {}), memRev('workspace', { 'a.csv': 'x,y\n1,2\n' })]);
    expect(c.missing).toEqual(["'a.csv' does not exist"]);
    expect(c.rows).toHaveLength(1);
  });
  it('images are passed through, not parsed', () => {
    const c = plotContent(root, toDecl('img', {}), [memRev('workspace', { 'img/a.png': '\x89PNG', 'img/b.svg': '<svg/>' })]);
    expect(c.props).toBeUndefined();
    expect(c.images.map((i) => i.path)).toEqual(['img/a.png', 'img/b.svg']);
  });
  it('a custom template gets the data and escaped field names; unknown placeholders are named', () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-tpl-'));
    fs.writeFileSync(path.join(tmp, 't.json'), '{"data": {"values": "<DVC_METRIC_DATA>"}, "encoding": {"y": {"field": "<DVC_METRIC_Y>"}}}');
    const c = plotContent(tmp, toDecl('m.json', { template: 't.json', y: 'train.loss' }), [memRev('workspace', { 'm.json': '[{"train.loss": 1}]' })]);
    const spec = vegaLiteSpec(c.props!, c.rows) as { data: { values: unknown[] }; encoding: { y: { field: string } } };
    expect(spec.encoding.y.field).toBe('train\\.loss');
    expect(spec.data.values).toHaveLength(1);
    fs.writeFileSync(path.join(tmp, 't.json'), '{"data": {"values": "<DVC_METRIC_DATA>"}, "params": ["<DVC_METRIC_GROUP_BY>"]}');
    const c2 = plotContent(tmp, toDecl('m.json', { template: 't.json' }), [memRev('workspace', { 'm.json': '[{"a": 1}]' })]);
    expect(() => vegaLiteSpec(c2.props!, c2.rows)).toThrow(/uses <DVC_METRIC_GROUP_BY>, which Lockstep does not fill in/);
  });
});

describe('plot data files', () => {
  it('YAML lists, headerless CSV, and a JSON error with its line', () => {
    expect(parsePlotFile({ path: 'a.yaml', bytes: Buffer.from('- {x: 1}\n- {x: 2}\n') }, 'workspace')).toEqual([{ x: 1 }, { x: 2 }]);
    expect(parsePlotFile({ path: 'a.csv', bytes: Buffer.from('1,a\n2,b\n') }, 'workspace', { header: false })).toEqual([
      { 0: 1, 1: 'a' },
      { 0: 2, 1: 'b' },
    ]);
    try {
      parsePlotFile({ path: 'a.json', bytes: Buffer.from('[\n{"x": 1}\n{"x": 2}]') }, 'HEAD');
      expect.unreachable();
    } catch (e) {
      expect((e as UserError).diagnostics[0]).toMatchObject({ location: { file: 'a.json', line: 3 } });
      expect((e as UserError).message).toMatch(/cannot parse plot data a\.json at HEAD/);
    }
  });
});

describe('.dvc pointer files', () => {
  it('reads ours and DVC 3/DVC 2 ones, relative to their folder', () => {
    expect(parsePointer('data/raw.csv.dvc', 'outs:\n- xxh64: 0123456789abcdef\n  size: 3\n  hash: xxh64\n  path: raw.csv\n').outs).toEqual([
      { path: 'data/raw.csv', algo: 'xxh64', hash: '0123456789abcdef', size: 3 },
    ]);
    expect(parsePointer('d.dvc', 'outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  nfiles: 2\n  hash: md5\n  path: d\n').outs[0]).toMatchObject({
      algo: 'md5',
      nfiles: 2,
    });
    expect(parsePointer('x.dvc', 'outs:\n- md5: 0123456789abcdef0123456789abcdef\n  path: x\n').outs[0]!.legacy).toBe(true);
  });
  it('refuses what it cannot honour, with a location', () => {
    const err = (t: string) => {
      try {
        parsePointer('p.dvc', t);
      } catch (e) {
        const d = (e as UserError).diagnostics[0]!;
        return `${d.location?.line ?? '-'}: ${d.message}`;
      }
      return 'accepted';
    };
    expect(err('outs: []\n')).toBe("1: a .dvc file needs a non-empty 'outs' list (in p.dvc)");
    expect(err('deps:\n- path: https://x/y\nouts:\n- md5: 0123456789abcdef0123456789abcdef\n  path: y\n')).toMatch(
      /^2: 'deps' in a \.dvc file \(imports, import-url\) is not supported/,
    );
    expect(err('outs:\n- path: ../up\n  md5: 0123456789abcdef0123456789abcdef\n')).toBe("2: '../up' is outside the repository (in p.dvc)");
    expect(err('outs:\n- path: a\n  md5: 0123456789abcdef0123456789abcdef\n  hash: xxh64\n')).toMatch(/^4: outs entry 'a' says 'hash: xxh64' but gives md5/);
    expect(err('outs:\n- path: a\n')).toMatch(/names no hash/);
  });
});

describe('finding pointer files', () => {
  it('remembers folder listings by mtime: a new pointer in a listed folder is found, skipped folders are never entered', () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-scan-'));
    const w = (rel: string, text: string) => {
      fs.mkdirSync(path.dirname(path.join(tmp!, rel)), { recursive: true });
      fs.writeFileSync(path.join(tmp!, rel), text);
    };
    const ptr = (name: string) => `outs:\n- xxh64: 0123456789abcdef\n  path: ${name}\n`;
    w('data/a.csv.dvc', ptr('a.csv'));
    w('node_modules/x/y.dvc', ptr('y'));
    w('.lockstep/z.dvc', ptr('z'));
    expect(findPointers(tmp).map((p) => p.file)).toEqual(['data/a.csv.dvc']);
    expect(fs.existsSync(path.join(tmp, '.lockstep/pointer-scan.json'))).toBe(true);
    w('data/deep/b.dvc', ptr('b'));
    w('c.dvc', ptr('c'));
    expect(findPointers(tmp).map((p) => p.file)).toEqual(['c.dvc', 'data/a.csv.dvc', 'data/deep/b.dvc']);
    fs.rmSync(path.join(tmp, 'data/deep'), { recursive: true });
    expect(findPointers(tmp).map((p) => p.file)).toEqual(['c.dvc', 'data/a.csv.dvc']);
  });
});

describe('md5 as DVC computes it', () => {
  it('files by bytes (DVC 3) or dos2unix (DVC 2); remembered by stat signature', async () => {
    const { Md5Memo, md5Path } = await import('../../runner/hash/md5.js');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-md5-'));
    const f = path.join(tmp, 'a.txt');
    fs.writeFileSync(f, 'a\r\nb\r\n');
    const crypto = await import('node:crypto');
    const md5 = (s: string) => crypto.createHash('md5').update(s).digest('hex');
    expect(md5Path(f)).toBe(md5('a\r\nb\r\n'));
    expect(md5Path(f, true)).toBe(md5('a\nb\n'));
    expect(md5Path(path.join(tmp, 'none'))).toBeUndefined();
    const memo = Md5Memo.load(tmp);
    fs.utimesSync(f, 1_700_000_000, 1_700_000_000);
    await new Promise((r) => setTimeout(r, 150)); // only files settled past a timestamp tick are remembered
    let reads = 0;
    const counted = (abs: string) => {
      reads++;
      return md5Path(abs)!;
    };
    const first = memo.hash(f, 'md5', counted);
    expect(memo.hash(f, 'md5', counted)).toBe(first);
    expect(reads).toBe(1); // remembered, not re-read
    fs.writeFileSync(f, 'x\r\ny\r\n'); // same size, same inode, the mtime put back: the ctime still moves
    fs.utimesSync(f, 1_700_000_000, 1_700_000_000);
    expect(md5Path(f, false, memo)).toBe(md5('x\r\ny\r\n'));
    memo.save();
    fs.writeFileSync(f, 'longer\n');
    expect(md5Path(f, false, Md5Memo.load(tmp))).toBe(crypto.createHash('md5').update('longer\n').digest('hex'));
  });
});
