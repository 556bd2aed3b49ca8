import { execSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { TempRepo } from '../helpers.js';
import { UserError } from '../../runner/errors.js';
import { describeAssignment, expandGrid, parseOverride, parseSweep } from '../../runner/exp/overrides.js';

let repo: TempRepo;
afterEach(() => repo?.cleanup());

describe('-S as DVC spells it (unit)', () => {
  it('parses every override form, with its file', () => {
    expect(parseOverride('train.lr=0.1')).toMatchObject({ kind: 'set', file: 'params.yaml', key: 'train.lr', values: [0.1] });
    expect(parseOverride('+train.new=x')).toMatchObject({ kind: 'add', key: 'train.new', values: ['x'] });
    expect(parseOverride('++train.lr=[1, 2]')).toMatchObject({ kind: 'force', key: 'train.lr', values: [[1, 2]] });
    expect(parseOverride('~train.drop')).toMatchObject({ kind: 'delete', key: 'train.drop', values: [] });
    expect(parseOverride('~train.drop=0.5')).toMatchObject({ kind: 'delete', values: [0.5] });
    expect(parseOverride('other.yaml:+x.y=1')).toMatchObject({ kind: 'add', file: 'other.yaml', key: 'x.y' });
    expect(parseOverride('other.yaml:~x')).toMatchObject({ kind: 'delete', file: 'other.yaml', key: 'x' });
    expect(parseOverride('url=http://a:1/b')).toMatchObject({ file: 'params.yaml', key: 'url', values: ['http://a:1/b'] });
  });

  it('sweeps: v1,v2, choice(), range() with Python semantics, lists kept whole', () => {
    const sw = (t: string) => parseSweep('x', t);
    expect(sw('range(100,300,100)')).toEqual([100, 200]);
    expect(sw('range(1,3)')).toEqual([1, 2]);
    expect(sw('range(3)')).toEqual([0, 1, 2]);
    expect(sw('range(5, 0, -2)')).toEqual([5, 3, 1]);
    expect(sw('range(0.1, 0.4, 0.1)')).toEqual([0.1, 0.2, 0.3]);
    expect(sw('choice(8,64)')).toEqual([8, 64]);
    expect(sw('choice(adam, "s,gd")')).toEqual(['adam', 's,gd']);
    expect(sw('1,2')).toEqual([1, 2]);
    expect(sw('[1,2],[3]')).toEqual([[1, 2], [3]]);
    expect(sw('{a: 1}')).toEqual([{ a: 1 }]);
  });

  it('a grid is the product; a deletion is in every point', () => {
    const g = expandGrid(['a=range(1,3)', 'b=choice(x,y)', '~c'].map(parseOverride));
    expect(g.map(describeAssignment)).toEqual(['a=1 b=x ~c', 'a=1 b=y ~c', 'a=2 b=x ~c', 'a=2 b=y ~c']);
  });

  it('bad forms are user errors', () => {
    for (const bad of [
      'x=[1,2',
      'x=range(1,2,0)',
      'x=range(5,1)',
      'x=range(a,b)',
      'x=glob(*)',
      'x=choice()',
      '~',
      '+=1',
      'x',
      'x=',
      'x="open',
      '~x=1,2',
      'a b=1',
    ]) {
      expect(() => parseOverride(bad), bad).toThrow(UserError);
    }
  });
});

const PIPELINE = `stages:
  a:
    cmd: echo \${train} > a.txt
    params: [train]
    outs: [a.txt]
  b:
    cmd: cat a.txt > b.txt
    deps: [a.txt]
    outs: [b.txt]
  c:
    cmd: echo \${other.n} > c.txt
    outs: [c.txt]
`;
const PARAMS = '# settings\ntrain:\n  lr: 0.1 # learning rate\n  drop: 0.5\nother:\n  n: 1\n';

function gitRepo(): TempRepo {
  const r = new TempRepo({ 'pipeline.yaml': PIPELINE, 'params.yaml': PARAMS });
  execSync('git init -q && git config user.email t@t && git config user.name t && git add -A && git commit -qm init', { cwd: r.dir });
  return r;
}

describe('exp run with DVC overrides (CLI)', () => {
  it('+key adds, ++key sets, ~key deletes, and comments survive', async () => {
    repo = gitRepo();
    const r = await repo.run(['exp', 'run', '-S', '+train.extra=5', '-S', '++train.lr=0.9', '--set-param', '~train.drop', '-n', 'forms']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('running experiment forms: train.extra=5 train.lr=0.9 ~train.drop');
    const params = repo.read('params.yaml');
    expect(params).toContain('# learning rate');
    expect(YAML.parse(params).train).toEqual({ lr: 0.9, extra: 5 });
    expect(repo.read('a.txt')).toBe('--lr 0.9 --extra 5\n');
  });

  it('exp run TARGET reproduces only that target and what it depends on', async () => {
    repo = gitRepo();
    const r = await repo.run(['exp', 'run', 'b', '-S', 'train.lr=0.2', '-n', 'only-b']);
    expect(r.code, r.stderr).toBe(0);
    expect(repo.exists('b.txt')).toBe(true);
    expect(repo.exists('c.txt')).toBe(false);
    const show = JSON.parse((await repo.run(['exp', 'show', '--json'])).stdout);
    expect(show.experiments[0]).toMatchObject({ name: 'only-b', status: 'success' });
  });

  it('a Hydra sweep queues the grid, and the queue runs it', async () => {
    repo = gitRepo();
    const q = await repo.run(['exp', 'run', 'a', '-S', 'train.lr=range(1,3)', '-S', 'other.n=choice(8,64)', '--queue']);
    expect(q.code, q.stderr).toBe(0);
    expect(
      q.stdout
        .split('\n')
        .filter((l) => l.startsWith('queued'))
        .map((l) => l.replace(/^queued \S+: /, '')),
    ).toEqual(['train.lr=1 other.n=8', 'train.lr=1 other.n=64', 'train.lr=2 other.n=8', 'train.lr=2 other.n=64']);
    const run = await repo.run(['exp', 'run', '--run-all', '-j', '2']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('4 succeeded, 0 failed');
  });

  it('each bad form exits 2 with one line naming it', async () => {
    repo = gitRepo();
    const cases: [string[], string][] = [
      [['-S', 'train.lr=[1,2'], "error: -S train.lr=[1,2: '[1,2' is not a valid value"],
      [['-S', 'train.lr=range(1,2,0)'], 'error: -S train.lr=range(1,2,0): range() step must not be zero'],
      [['-S', 'train.lr=range(5,1)'], 'error: -S train.lr=range(5,1): range(5,1) gives no values'],
      [['-S', 'train.lr=glob(*)'], 'error: -S train.lr=glob(*): glob(…) is not supported'],
      [['-S', '+train.lr=1'], "error: param 'train.lr' already exists in params.yaml"],
      [['-S', 'train.new=1'], "error: param 'train.new' not found in params.yaml"],
      [['-S', '~train.nope'], "error: cannot delete 'train.nope': not found in params.yaml"],
      [['-S', '~train.lr=9'], "error: cannot delete 'train.lr': its value in params.yaml is 0.1, not 9"],
      [['-S', '+train.lr.x=1'], "error: cannot add 'train.lr.x': 'train.lr' in params.yaml is a value, not a mapping"],
      [['-S', '~'], "error: -S ~: '' is not a params key"],
      [['-S', 'nonsense'], "error: -S expects key=value, got 'nonsense'"],
      [['nosuchstage'], "error: unknown stage or output 'nosuchstage'"],
    ];
    for (const [args, line] of cases) {
      const r = await repo.run(['exp', 'run', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.split('\n')[0], args.join(' ')).toContain(line);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(repo.read('params.yaml')).toBe(PARAMS); // nothing was written
  });
});
