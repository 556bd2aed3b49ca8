import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { buildPipeline } from '../../../runner/config/pipeline.js';
import { UserError, type Diagnostic } from '../../../runner/errors.js';

// The builder in process: a dvc.yaml-shaped object, written out as YAML so errors have lines to point at.
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-unit-pipeline-'));
fs.writeFileSync(path.join(root, 'params.yaml'), 'train:\n  lr: 0.1\n  epochs: 3\nmodels: [tree, linear]\n');
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const build = (doc: unknown) => buildPipeline(root, YAML.stringify(doc));
function problems(doc: unknown): Diagnostic[] {
  try {
    build(doc);
  } catch (e) {
    if (e instanceof UserError) return [...e.diagnostics];
    throw e;
  }
  throw new Error('expected the pipeline to be refused');
}
const where = (d: Diagnostic) => `${d.location?.file}:${d.location?.line}:${d.location?.column}`;

describe('the pipeline builder', () => {
  it('turns stages into typed Stages with normalised paths and declared params', () => {
    const p = build({
      stages: {
        prepare: { cmd: 'python prep.py', deps: ['data/raw.csv', './prep.py'], outs: ['data/clean.csv'] },
        train: {
          cmd: ['python train.py --lr ${train.lr}', 'echo done'],
          deps: ['data/clean.csv'],
          params: ['train.epochs'],
          outs: [{ 'models/model.bin': { cache: false } }],
          metrics: [{ 'metrics.json': { cache: false } }],
          frozen: true,
        },
        report: { cmd: 'make', wdir: 'src', deps: ['../metrics.json', 'report.py'], outs: ['../report.html'] },
      },
    });
    expect([...p.stages.keys()]).toEqual(['prepare', 'train', 'report']);
    const prepare = p.stages.get('prepare')!;
    expect(prepare.command).toEqual({ kind: 'shell', commands: ['python prep.py'] });
    expect(prepare.deps.map((d) => d.path)).toEqual(['data/raw.csv', 'prep.py']);
    expect(prepare.location).toEqual({ file: 'pipeline.yaml', line: 2, column: 3 });
    const train = p.stages.get('train')!;
    // ${train.lr} is interpolated and tracked as a param beside the declared one.
    expect(train.command).toEqual({ kind: 'shell', commands: ['python train.py --lr 0.1', 'echo done'] });
    expect(train.outs.map((o) => [o.path, o.kind, o.cache])).toEqual([
      ['models/model.bin', 'out', false],
      ['metrics.json', 'metric', false],
    ]);
    expect(train.params).toEqual([{ file: 'params.yaml', keys: ['train.epochs', 'train.lr'] }]);
    expect(train.frozen).toBe(true);
    // Paths are repository-relative whatever the wdir.
    const report = p.stages.get('report')!;
    expect([report.wdir, report.deps.map((d) => d.path), report.outs.map((o) => o.path)]).toEqual(['src', ['metrics.json', 'src/report.py'], ['report.html']]);
  });

  it('expands foreach into one stage per item, named name@item, grouped', () => {
    const p = build({ stages: { fit: { foreach: '${models}', do: { cmd: 'fit ${item}', outs: ['${item}.bin'] } } } });
    expect([...p.stages.values()].map((s) => [s.name, s.group, s.outs[0]!.path])).toEqual([
      ['fit@tree', 'fit', 'tree.bin'],
      ['fit@linear', 'fit', 'linear.bin'],
    ]);
  });

  it('names an unknown field by file:line:col, with the likely intended one', () => {
    const [d, ...rest] = problems({ stages: { train: { cmd: 'x', outz: ['a'] } } });
    expect(rest).toEqual([]);
    expect(d!.message).toBe("unknown field 'outz' in stage 'train'");
    expect(where(d!)).toBe('pipeline.yaml:4:5');
    expect(d!.hint).toBe("did you mean 'outs'?");
  });

  it('reports every mistake at once, each where it is', () => {
    const ds = problems({ stages: { a: { deps: ['x'] }, b: { cmd: 'x', frozen: 'yes' }, 'bad name': { cmd: 'x' }, c: { cmd: 'x', wdir: '../up' } } });
    expect(ds.map((d) => `${where(d)} ${d.message}`)).toEqual([
      "pipeline.yaml:2:3 stage 'a' has no 'cmd' (or 'module')",
      "pipeline.yaml:7:13 'frozen' must be true or false",
      "pipeline.yaml:8:3 invalid stage name 'bad name': use letters, digits, '_', '-' and '.'",
      "pipeline.yaml:12:11 'wdir' must stay inside the repository",
    ]);
  });

  it('refuses an unknown ${} reference and a missing vars file with a location', () => {
    const [ref] = problems({ stages: { t: { cmd: 'run ${train.lrr}' } } });
    expect(ref!.message).toMatch(/train\.lrr/);
    expect(ref!.location?.line).toBe(3);
    const [vars] = problems({ vars: ['nope.yaml'], stages: { t: { cmd: 'x' } } });
    expect(vars!.message).toBe("vars file 'nope.yaml' does not exist");
    expect(where(vars!)).toBe('pipeline.yaml:2:5');
  });

  it('says where malformed YAML breaks, and that a pipeline must be a mapping', () => {
    expect(() => buildPipeline(root, 'stages:\n  a: {cmd: x\n')).toThrow(UserError);
    try {
      buildPipeline(root, 'stages:\n  a: {cmd: x\n');
    } catch (e) {
      expect((e as UserError).diagnostics[0]!.location?.file).toBe('pipeline.yaml');
      expect((e as UserError).diagnostics[0]!.location?.line).toBeGreaterThan(0);
    }
    expect(problems(['a'])[0]!.message).toBe("pipeline.yaml must be a mapping with a 'stages' field");
  });
});
