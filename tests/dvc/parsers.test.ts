import { describe, expect, it } from 'vitest';
import { UserError } from '../../runner/errors.js';
import { parseLiteral, parsePythonParams } from '../../runner/config/python-params.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { foreachEntries, matrixEntries } from '../../runner/config/pipeline.js';
import { applyAssignment } from '../../runner/exp/params-writer.js';
import { expandGrid, parseOverride } from '../../runner/exp/overrides.js';

const lit = (s: string) =>
  parseLiteral(s, (m) => {
    throw new Error(m);
  });
const pyError = (text: string) => {
  try {
    parsePythonParams(text, 'p.py');
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    const d = (e as UserError).diagnostics[0]!;
    return `${d.location?.line}: ${d.message}`;
  }
  throw new Error('no error');
};

describe('Python literals', () => {
  it('reads numbers, strings, constants and containers as Python does', () => {
    expect(lit('-1_000')).toBe(-1000);
    expect(lit('0x1F')).toBe(31);
    expect(lit('1e-3')).toBe(0.001);
    expect(lit('.5')).toBe(0.5);
    expect(lit(`'a\\'b' "c"`)).toBe("a'bc");
    expect(lit(`r'\\d+'`)).toBe('\\d+');
    expect(lit('[True, False, None, (1, 2), (3,), (4)]')).toEqual([true, false, null, [1, 2], [3], 4]);
    expect(lit(`{'a': {"b": [1, 2.5]}, 3: 'x',}`)).toEqual({ a: { b: [1, 2.5] }, 3: 'x' });
  });

  it('refuses what is not a literal', () => {
    expect(() => lit('1 + 2')).toThrow(/only literals/);
    expect(() => lit('{1, 2}')).toThrow(/sets are not supported/);
    expect(() => lit('f"x{y}"')).toThrow(/f-strings/);
    expect(() => lit('os.getcwd()')).toThrow(/'os' is not a literal/);
  });
});

describe('Python params files', () => {
  it('reads module constants, annotated ones, classes and __init__, skipping imports and docstrings', () => {
    const text = `'''doc'''\nfrom pathlib import Path\nA = 1  # one\nB: dict = {\n  "x": [1,\n        2],\n}\nclass C(Base):\n    """doc"""\n    d = 'x=y'\n    def __init__(self, n=1) -> None:\n        self.e = (1, 2)\n`;
    expect(parsePythonParams(text, 'p.py')).toEqual({ A: 1, B: { x: [1, 2] }, C: { d: 'x=y', e: [1, 2] } });
  });

  it('names the line of anything else', () => {
    expect(pyError('A = 1\nif A:\n    B = 2\n')).toBe('2: cannot read this statement as a param: if A:');
    expect(pyError('A = 1\n\ndef f():\n    pass\n')).toBe('3: cannot read this statement as a param: def f():');
    expect(pyError('class C:\n    def g(self):\n        pass\n')).toBe('2: cannot read this statement as a param: def g(self):');
    expect(pyError('A = B = 1\n')).toBe("1: 'B' is not a literal in the value of 'A'");
    expect(pyError('x.y = 1\n')).toBe("1: cannot read the assignment to 'x.y' as a param");
    expect(pyError('A = [1,\n')).toBe('1: unclosed bracket');
  });
});

describe('generated stage names', () => {
  it('foreach: values of a scalar list (repeats once), indexes for composite items, keys of a mapping', () => {
    expect(foreachEntries(['a', 'b', 'a'])!.map(([k]) => k)).toEqual(['a', 'b']);
    expect(foreachEntries([1, true, null])!.map(([k]) => k)).toEqual(['1', 'true', 'None']);
    expect(foreachEntries([{ a: 1 }, 'x'])!.map(([k]) => k)).toEqual(['0', '1']);
    expect(foreachEntries({ uk: 1, us: 2 })!.map(([k]) => k)).toEqual(['uk', 'us']);
    expect(foreachEntries('nope')).toBeUndefined();
  });

  it('matrix: scalar values by name, composite ones as name+index', () => {
    expect(matrixEntries({ m: ['lr', { deep: 1 }], b: [false] }).map(([k]) => k)).toEqual(['lr-false', 'm1-false']);
  });
});

describe('writing -S overrides into params files', () => {
  const assign = (...args: string[]) => expandGrid(args.map(parseOverride))[0]!;
  it('YAML keeps comments; JSON and TOML get added, set and deleted keys; Python values are set in place', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-writer-'));
    try {
      fs.writeFileSync(path.join(dir, 'params.yaml'), '# top\ntrain:\n  lr: 0.1 # rate\n  drop: 0.5\n');
      fs.writeFileSync(path.join(dir, 'p.json'), '{"a": {"b": 1, "c": 2}}');
      fs.writeFileSync(path.join(dir, 'p.toml'), '[train]\nlr = 0.1\ndrop = 0.5\n');
      fs.writeFileSync(path.join(dir, 'p.py'), 'LR = 0.1\n');
      applyAssignment(dir, assign('train.lr=0.2', '+train.new.deep=1', '~train.drop'));
      expect(fs.readFileSync(path.join(dir, 'params.yaml'), 'utf8')).toBe('# top\ntrain:\n  lr: 0.2 # rate\n  new:\n    deep: 1\n');
      applyAssignment(dir, assign('p.json:++a.b=5', 'p.json:+x.y=[1]', 'p.json:~a.c'));
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'p.json'), 'utf8'))).toEqual({ a: { b: 5 }, x: { y: [1] } });
      applyAssignment(dir, assign('p.toml:train.lr=0.3', 'p.toml:~train.drop', 'p.toml:+train.seed=7'));
      expect(fs.readFileSync(path.join(dir, 'p.toml'), 'utf8')).toBe('[train]\nlr = 0.3\nseed = 7\n');
      fs.writeFileSync(
        path.join(dir, 'p.py'),
        'import os\nLR = 0.1  # rate\nclass Train:\n    name = "a#b"\n    layers = [1,\n              2]\n    def __init__(self):\n        self.drop = 0.5\n',
      );
      applyAssignment(dir, assign('p.py:LR=0.2', 'p.py:Train.name=x y', 'p.py:Train.drop=[1, {a: true}]'));
      expect(fs.readFileSync(path.join(dir, 'p.py'), 'utf8')).toBe(
        'import os\nLR = 0.2  # rate\nclass Train:\n    name = "x y"\n    layers = [1,\n              2]\n    def __init__(self):\n        self.drop = [1, {"a": True}]\n',
      );
      expect(() => applyAssignment(dir, assign('p.py:Train.layers=[3]'))).toThrow(/its value spans several lines/);
      expect(() => applyAssignment(dir, assign('p.py:+NEW=1'))).toThrow(/edits only assignments that exist/);
      expect(() => applyAssignment(dir, assign('p.py:~LR'))).toThrow(/does not delete Python params/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('nested pipeline discovery', () => {
  it('skips .git, .lockstep, node_modules, outputs, other repositories (.git, .dvc) and folders .dvcignore names', async () => {
    const { findNestedPipelineFiles } = await import('../../runner/config/pipeline.js');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-discover-'));
    try {
      const files = [
        'sub/.git',
        'sub/pipeline.yaml',
        'dvcsub/.dvc/config',
        'dvcsub/x/dvc.yaml',
        'a/pipeline.yaml',
        'a/b/dvc.yaml',
        'both/pipeline.yaml',
        'both/dvc.yaml',
        'node_modules/x/pipeline.yaml',
        '.git/pipeline.yaml',
        'out/pipeline.yaml',
        'tests/fixtures/one/dvc.yaml',
        'deep/x/fixtures/two/dvc.yaml',
        'keep/fixtures2/dvc.yaml',
      ];
      for (const f of files) {
        fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
        fs.writeFileSync(path.join(dir, f), 'stages: {}\n');
      }
      fs.writeFileSync(path.join(dir, '.dvcignore'), '# fixtures are not pipelines\n/tests/fixtures/\nfixtures\n');
      expect(findNestedPipelineFiles(dir, new Set(['out']))).toEqual(['a/b/dvc.yaml', 'a/pipeline.yaml', 'both/pipeline.yaml', 'keep/fixtures2/dvc.yaml']);
      fs.writeFileSync(path.join(dir, '.lockstepignore'), '!a\n');
      expect(() => findNestedPipelineFiles(dir, new Set())).toThrow(/negated patterns are not supported/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
