import { execSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { TempRepo, reproJson as reproRun } from '../helpers.js';

let repo: TempRepo;
afterEach(() => repo?.cleanup());

const reproJson = (args: string[] = []) => reproRun(repo, args);

/** The one line a bad input gives, and its exit code. */
async function errorOf(args: string[] = ['status']): Promise<string> {
  const r = await repo.run(args);
  expect(r.code, r.stdout + r.stderr).toBe(2);
  expect(r.stderr).not.toMatch(/at .*\.(m?js|ts):\d+/); // no stack trace
  return r.stderr.trim().split('\n')[0]!;
}

describe('matrix', () => {
  it('takes its lists from params and vars, and ${key} names the combination', async () => {
    repo = new TempRepo({
      'dvc.yaml': `vars:
  - seeds: [1, 2]
stages:
  train:
    matrix:
      model: \${models}
      seed: \${seeds}
    cmd: echo \${key} \${item.model} \${item.seed} > out-\${key}.txt
    outs: ["out-\${key}.txt"]
`,
      'params.yaml': 'models: [lr, xgb]\n',
    });
    const r = await reproJson();
    expect(r.code, r.stderr).toBe(0);
    expect(Object.keys(r.states)).toEqual(['train@lr-1', 'train@lr-2', 'train@xgb-1', 'train@xgb-2']);
    expect(repo.read('out-xgb-2.txt')).toBe('xgb-2 xgb 2\n');
  });
});

describe('wdir', () => {
  it('is interpolated: the stage runs in the folder ${dirs.work} names, and tracks the param', async () => {
    repo = new TempRepo({
      'pipeline.yaml':
        'stages:\n  a:\n    wdir: ${dirs.work}\n    cmd: pwd > where.txt\n    outs: [where.txt]\n  b:\n    wdir: ${dirs.work}\n    vars: [{n: 2}]\n    cmd: echo ${n} > b.txt\n    outs: [b.txt]\n',
      'params.yaml': 'dirs:\n  work: sub/deep\n',
    });
    const r = await reproJson();
    expect(r.code, r.stderr).toBe(0);
    expect(repo.read('sub/deep/where.txt').trim()).toBe(repo.path('sub/deep'));
    expect(repo.exists('${dirs.work}')).toBe(false);
    const lock = YAML.parse(repo.read('pipeline.lock'));
    expect(lock.stages.a.params).toEqual({ 'params.yaml': { 'dirs.work': 'sub/deep' } });
    expect(lock.stages.b.params).toEqual(lock.stages.a.params); // also with the stage's own vars
    expect(repo.read('sub/deep/b.txt')).toBe('2\n');
  });

  it('an unknown key or a non-path value is refused with its location', async () => {
    repo = new TempRepo({ 'pipeline.yaml': 'stages:\n  a:\n    wdir: ${dirs.wrok}\n    cmd: echo a\n', 'params.yaml': 'dirs:\n  work: sub\n' });
    expect(await errorOf()).toBe("pipeline.yaml:3:11: error: could not find 'dirs.wrok' for ${dirs.wrok} in params files or vars");
    repo.write({ 'pipeline.yaml': 'stages:\n  a:\n    wdir: ${dirs}\n    cmd: echo a\n' });
    expect(await errorOf()).toBe(`pipeline.yaml:3:11: error: 'wdir' must be a path, but \${…} gave {"work":"sub"}`);
  });
});

describe('foreach', () => {
  it('a list with repeated values names one stage per distinct value, as DVC does', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  copy:
    foreach: [a, b, a, true]
    do:
      cmd: echo \${item} > out-\${item}.txt
      outs: ["out-\${item}.txt"]
`,
    });
    const r = await reproJson();
    expect(r.code, r.stderr).toBe(0);
    expect(Object.keys(r.states)).toEqual(['copy@a', 'copy@b', 'copy@true']);
  });
});

describe('vars', () => {
  it('may add keys, even inside a params section, and may list params.yaml again', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `vars:
  - params.yaml
  - train: {extra: 7}
stages:
  a:
    cmd: echo \${train.lr} \${train.extra} > a.txt
    outs: [a.txt]
`,
      'params.yaml': 'train:\n  lr: 0.1\n',
    });
    expect((await reproJson()).code).toBe(0);
    expect(repo.read('a.txt')).toBe('0.1 7\n');
  });

  it('redefining a key params.yaml (or an earlier vars entry) defines is refused, as DVC does', async () => {
    repo = new TempRepo({
      'pipeline.yaml': 'vars:\n  - train: {lr: 0.5}\nstages:\n  a:\n    cmd: echo ${train.lr}\n',
      'params.yaml': 'train:\n  lr: 0.1\n',
    });
    expect(await errorOf()).toBe("pipeline.yaml:2:5: error: cannot redefine 'train.lr' from 'vars[0]' as it already exists in 'params.yaml'");
    repo.write({ 'pipeline.yaml': 'vars:\n  - other.yaml\nstages:\n  a:\n    cmd: echo a\n    vars:\n      - seed: 1\n', 'other.yaml': 'seed: 2\n' });
    expect(await errorOf()).toBe("pipeline.yaml:7:9: error: cannot redefine 'seed' from 'a.vars[0]' as it already exists in 'other.yaml'");
  });
});

describe('params files in TOML and Python', () => {
  it('TOML: values interpolate and are tracked; an edit reruns the stage', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `vars:
  - config.toml
stages:
  a:
    cmd: echo \${train.lr} > a.txt
    params:
      - config.toml: [train.epochs]
    outs: [a.txt]
`,
      'config.toml': '# settings\n[train]\nlr = 0.1\nepochs = 3\nstart = 2024-01-01\n',
    });
    expect((await reproJson()).ran).toEqual(['a']);
    expect(repo.read('a.txt')).toBe('0.1\n');
    const lock = YAML.parse(repo.read('pipeline.lock'));
    expect(lock.stages.a.params).toEqual({ 'config.toml': { 'train.epochs': 3, 'train.lr': 0.1 } });
    execSync('git init -q && git config user.email t@t && git config user.name t && git add -A && git commit -qm init', { cwd: repo.dir });
    repo.write({ 'config.toml': '[train]\nlr = 0.1\nepochs = 4\nstart = 2024-01-01\n' });
    expect((await repo.run(['status'])).stdout).toContain('param changed: train.epochs: 3 -> 4 (config.toml)');
    expect((await repo.run(['params', 'diff'])).stdout).toMatch(/config\.toml\s+train\.epochs\s+3\s+4/);
    repo.write({ 'config.toml': '[train]\nlr = \n' });
    expect(await errorOf()).toBe('config.toml:2:6: error: invalid TOML: invalid value');
  });

  it('Python: module constants, class attributes and __init__ self attributes; anything else refused by line', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `vars:
  - params.py:Train
stages:
  a:
    cmd: echo \${Train.epochs} > a.txt
    params:
      - params.py: [LR, Train.layers, Train.dropout]
    outs: [a.txt]
`,
      'params.py': `"""Training settings."""
import os

LR = 0.001
NAME: str = "run-1"


class Train:
    epochs = 10
    layers = [64,
              32]  # wrapped

    def __init__(self):
        self.dropout = 0.25
`,
    });
    expect((await reproJson()).ran).toEqual(['a']);
    expect(repo.read('a.txt')).toBe('10\n');
    const lock = YAML.parse(repo.read('pipeline.lock'));
    expect(lock.stages.a.params['params.py']).toEqual({ LR: 0.001, 'Train.dropout': 0.25, 'Train.epochs': 10, 'Train.layers': [64, 32] });
    repo.write({ 'params.py': repo.read('params.py').replace('self.dropout = 0.25', 'self.dropout = 0.5') });
    expect((await repo.run(['status'])).stdout).toContain('param changed: Train.dropout: 0.25 -> 0.5 (params.py)');
    repo.write({ 'params.py': 'LR = 0.1\nSEED = int(os.environ["SEED"])\n' });
    expect(await errorOf()).toBe("params.py:2:1: error: 'int' is not a literal in the value of 'SEED'");
  });
});

describe('dictionary unpacking in cmd', () => {
  it('spells arguments as DVC does (shlex quoting only where needed, None, Python list items), so dvc.lock cmds match', async () => {
    repo = new TempRepo({
      'pipeline.yaml': 'stages:\n  a:\n    cmd: echo ${opts} > a.txt\n    outs: [a.txt]\n',
      'params.yaml':
        "opts:\n  name: plain-word.v1\n  msg: it's here\n  empty: ''\n  none: null\n  off: false\n  on: true\n  sizes: [1, true, a b]\n  nested: {k: 2}\n",
    });
    const r = await reproJson();
    expect(r.code, r.stderr).toBe(0);
    const cmd = YAML.parse(repo.read('pipeline.lock')).stages.a.cmd;
    expect(cmd).toBe(`echo --name plain-word.v1 --msg 'it'"'"'s here' --empty '' --none None --on --sizes 1 True 'a b' --nested.k 2 > a.txt`);
    expect(repo.read('a.txt')).toBe("--name plain-word.v1 --msg it's here --empty  --none None --on --sizes 1 True a b --nested.k 2\n");
  });
});
