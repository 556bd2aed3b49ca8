import fs from 'node:fs';
import path from 'node:path';
import { execSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { TempRepo, filesUnder, statesOf } from '../helpers.js';

let repo: TempRepo;
afterEach(() => repo?.cleanup());

// `train` appends to runs.txt (not an output) so the test can count real executions.
const PIPELINE = `stages:
  prepare:
    cmd: mkdir -p data && node -e "const fs=require('fs'); for (let i=0;i<5;i++) fs.writeFileSync('data/part'+i+'.txt', 'row '+i+' scale \${scale}\\n')"
    params: [scale]
    outs: [data]
  train:
    cmd: >-
      echo "training with lr \${lr}" && echo run >> runs.txt && cat data/*.txt > model.bin && echo "lr \${lr}" >> model.bin && echo '{"acc": \${lr}}' > metrics.json
    deps: [data]
    params: [lr]
    outs: [model.bin]
    metrics:
      - metrics.json: {cache: false}
`;

function setup(params = 'scale: 1\nlr: 0.1\n'): TempRepo {
  return new TempRepo({ 'pipeline.yaml': PIPELINE, 'params.yaml': params });
}

const runsOf = () => (repo.exists('runs.txt') ? repo.read('runs.txt').trim().split('\n').length : 0);

const cacheFiles = (dir = repo.path('.lockstep/cache')): string[] => filesUnder(dir);

describe('run-cache', () => {
  it('params A → B → A: the third repro restores instead of running, replays the log, and the outputs are byte-identical', async () => {
    repo = setup();
    expect((await repo.run(['repro'])).code).toBe(0);
    const modelA = repo.read('model.bin');
    const metricsA = repo.read('metrics.json');
    repo.write({ 'params.yaml': 'scale: 1\nlr: 0.5\n' });
    expect((await repo.run(['repro'])).code).toBe(0);
    expect(repo.read('model.bin')).toContain('lr 0.5');
    expect(runsOf()).toBe(2);

    repo.write({ 'params.yaml': 'scale: 1\nlr: 0.1\n' });
    const third = await repo.run(['repro']);
    expect(third.code).toBe(0);
    expect(third.stdout).toMatch(/train: restored from run-cache/);
    expect(third.stdout).toContain('training with lr 0.1'); // the saved log, replayed
    expect(third.stdout).toMatch(/0 ran, 1 restored/);
    expect(runsOf()).toBe(2); // nothing executed
    expect(repo.read('model.bin')).toBe(modelA);
    expect(repo.read('metrics.json')).toBe(metricsA); // uncached outputs come back too
    // and the lock now says the workspace is up to date
    expect((await repo.run(['status'])).stdout).toContain('up to date');
    const json = await repo.run(['repro', '--json']);
    expect(Object.values(statesOf(json.stdout))).toEqual(['skipped', 'skipped']);
  });

  it('--no-run-cache runs the stage again', async () => {
    repo = setup();
    await repo.run(['repro']);
    repo.write({ 'params.yaml': 'scale: 1\nlr: 0.5\n' });
    await repo.run(['repro']);
    repo.write({ 'params.yaml': 'scale: 1\nlr: 0.1\n' });
    const r = await repo.run(['repro', '--no-run-cache']);
    expect(r.stdout).toMatch(/train: done/);
    expect(runsOf()).toBe(3);
  });

  it('-f always runs, never restores', async () => {
    repo = setup();
    await repo.run(['repro']);
    const r = await repo.run(['repro', '-f', 'train', '-s']);
    expect(r.stdout).toMatch(/train: done/);
    expect(runsOf()).toBe(2);
  });

  it('signed entries: with LOCKSTEP_RUN_CACHE_KEY set, unsigned and wrongly signed entries are ignored with a warning', async () => {
    repo = setup();
    await repo.run(['repro']); // unsigned entries
    repo.write({ 'params.yaml': 'scale: 1\nlr: 0.5\n' });
    await repo.run(['repro']);
    repo.write({ 'params.yaml': 'scale: 1\nlr: 0.1\n' });
    const keyed = { LOCKSTEP_RUN_CACHE_KEY: 'secret-1' };
    const r = await repo.run(['repro'], { env: keyed });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/ignoring run-cache entry [0-9a-f]{16}: it is unsigned and LOCKSTEP_RUN_CACHE_KEY is set/);
    expect(r.stdout).toMatch(/train: done/);
    expect(runsOf()).toBe(3);

    // Now signed with secret-1: trusted with the same key, refused with another.
    repo.write({ 'params.yaml': 'scale: 1\nlr: 0.5\n' });
    await repo.run(['repro'], { env: keyed });
    repo.write({ 'params.yaml': 'scale: 1\nlr: 0.1\n' });
    const ok = await repo.run(['repro'], { env: keyed });
    expect(ok.stdout).toMatch(/train: restored from run-cache/);
    repo.write({ 'params.yaml': 'scale: 1\nlr: 0.5\n' });
    const bad = await repo.run(['repro'], { env: { LOCKSTEP_RUN_CACHE_KEY: 'secret-2' } });
    expect(bad.stderr).toMatch(/its signature does not match LOCKSTEP_RUN_CACHE_KEY/);
    expect(bad.stdout).toMatch(/train: done/);
  });

  it('a forged entry (edited outs, signature kept) is refused', async () => {
    repo = setup();
    const keyed = { LOCKSTEP_RUN_CACHE_KEY: 'k' };
    await repo.run(['repro'], { env: keyed });
    repo.write({ 'params.yaml': 'scale: 1\nlr: 0.5\n' });
    await repo.run(['repro'], { env: keyed });
    const entries = cacheFiles().filter((f) => f.includes('/runs/'));
    for (const f of entries) {
      const e = JSON.parse(fs.readFileSync(f, 'utf8'));
      if (e.stage !== 'train') continue;
      e.log = 'forged\n';
      fs.writeFileSync(f, JSON.stringify(e));
    }
    repo.write({ 'params.yaml': 'scale: 1\nlr: 0.1\n' });
    const r = await repo.run(['repro'], { env: keyed });
    expect(r.stderr).toMatch(/signature does not match/);
    expect(r.stdout).not.toContain('forged');
    expect(r.stdout).toMatch(/train: done/);
  });

  it('read-only mode (LOCKSTEP_RUN_CACHE_READ_ONLY=1) uses entries but records none', async () => {
    repo = setup();
    await repo.run(['repro'], { env: { LOCKSTEP_RUN_CACHE_READ_ONLY: '1' } });
    expect(cacheFiles().filter((f) => f.includes('/runs/'))).toEqual([]);
    expect(cacheFiles().length).toBeGreaterThan(0); // outputs are still cached
  });
});

describe('checkout', () => {
  it('puts deleted outputs back byte-identically, and leaves up-to-date ones alone', async () => {
    repo = setup();
    await repo.run(['repro']);
    const model = repo.read('model.bin');
    const part3 = repo.read('data/part3.txt');
    repo.rm('data');
    repo.rm('model.bin');
    const r = await repo.run(['checkout']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/2 outputs: 2 restored, 0 unchanged/);
    expect(repo.read('model.bin')).toBe(model);
    expect(repo.read('data/part3.txt')).toBe(part3);
    expect(fs.readdirSync(repo.path('data')).sort()).toEqual(['part0.txt', 'part1.txt', 'part2.txt', 'part3.txt', 'part4.txt']);
    const again = await repo.run(['checkout']);
    expect(again.stdout).toMatch(/0 restored, 2 unchanged/);
    expect((await repo.run(['status'])).stdout).toContain('up to date');
  });

  it('a directory output regains exactly its files: extra files go, edited ones are restored', async () => {
    repo = setup();
    await repo.run(['repro']);
    const part1 = repo.read('data/part1.txt');
    // Editing a file and adding another: the previous content is in the cache, so nothing is lost by restoring.
    repo.write({ 'data/part1.txt': 'edited\n', 'data/extra.txt': 'x' });
    const refused = await repo.run(['checkout', 'prepare']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/data: it has changes that are not in the cache; rerun with --force/);
    expect(repo.read('data/part1.txt')).toBe('edited\n');
    const forced = await repo.run(['checkout', 'prepare', '--force']);
    expect(forced.code).toBe(0);
    expect(repo.read('data/part1.txt')).toBe(part1);
    expect(repo.exists('data/extra.txt')).toBe(false);
  });

  it('an object missing from the cache is named, with what to do', async () => {
    repo = setup();
    await repo.run(['repro']);
    fs.rmSync(repo.path('.lockstep/cache/files'), { recursive: true });
    repo.rm('model.bin');
    const r = await repo.run(['checkout']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/model\.bin: 1 object not in the cache; run 'lockstep pull' or 'lockstep repro train'/);
  });

  it('a tampered manifest that points outside its output is refused; nothing is written outside', async () => {
    repo = setup();
    await repo.run(['repro']);
    const lock = repo.read('pipeline.lock');
    const dirHash = /path: data\n\s+xxh64: ([0-9a-f]{16}\.dir)/.exec(lock)![1]!;
    const obj = repo.path(`.lockstep/cache/files/xxh64/${dirHash.slice(0, 2)}/${dirHash.slice(2)}`);
    const entries = JSON.parse(fs.readFileSync(obj, 'utf8'));
    entries[0].relpath = '../../escaped.txt';
    fs.chmodSync(obj, 0o644);
    fs.writeFileSync(obj, JSON.stringify(entries));
    repo.rm('data');
    const r = await repo.run(['checkout']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/names '\.\.\/\.\.\/escaped\.txt', which has a '\.\.'.*outside its output/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(fs.existsSync(path.join(repo.dir, '..', 'escaped.txt'))).toBe(false);
    expect(fs.existsSync(repo.path('escaped.txt'))).toBe(false);
  });

  it('cached objects are read-only, and with hardlinks a persist output edited in place leaves the cache intact', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  grow:
    cmd: echo "line \${n}" >> log.txt
    params: [n]
    outs:
      - log.txt: {persist: true}
`,
      'params.yaml': 'n: 1\n',
    });
    const env = { LOCKSTEP_CACHE_TYPE: 'hardlink' };
    expect((await repo.run(['repro'], { env })).code).toBe(0);
    const objects = cacheFiles().filter((f) => f.includes('/files/'));
    expect(objects).toHaveLength(1);
    expect(fs.statSync(objects[0]!).mode & 0o222).toBe(0);
    expect(fs.statSync(repo.path('log.txt')).ino).toBe(fs.statSync(objects[0]!).ino); // linked, not copied
    repo.write({ 'params.yaml': 'n: 2\n' });
    expect((await repo.run(['repro'], { env })).code).toBe(0);
    expect(repo.read('log.txt')).toBe('line 1\nline 2\n');
    expect(fs.readFileSync(objects[0]!, 'utf8')).toBe('line 1\n'); // the first object is untouched
  });

  it('cache.type in .lockstep/config is validated with a location', async () => {
    repo = setup();
    repo.write({ '.lockstep/config': 'cache:\n  type: symlinks\n' });
    const r = await repo.run(['repro']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\.lockstep\/config:2:9: .*cache\.type must be one of copy, hardlink, reflink, got 'symlinks'/);
    repo.write({ '.lockstep/config': 'cache:\n  tpye: copy\n' });
    const r2 = await repo.run(['repro']);
    expect(r2.stderr).toMatch(/unknown field 'cache\.tpye'; did you mean 'type'\?/);
  });
});

describe('repro --allow-missing', () => {
  it('runs nothing when only outputs are missing, and says so', async () => {
    repo = setup();
    await repo.run(['repro']);
    repo.rm('data');
    repo.rm('model.bin');
    const r = await repo.run(['repro', '--allow-missing', '--json']);
    expect(r.code).toBe(0);
    expect(Object.values(statesOf(r.stdout))).toEqual(['skipped', 'skipped']);
    expect(runsOf()).toBe(1);
    // A stage that must run cannot use an output that was allowed to stay missing: it says why.
    repo.write({ 'params.yaml': 'scale: 1\nlr: 0.7\n' });
    const r2 = await repo.run(['repro', '--allow-missing', '--no-run-cache']);
    expect(r2.code).toBe(1);
    expect(r2.stdout).toMatch(/train: failed .*dep 'data' does not exist \(--allow-missing left it out; pull it or repro without --allow-missing\)/);
    // Without the flag the missing upstream output is rebuilt (restored from the cache) first.
    const r3 = await repo.run(['repro', '--no-run-cache']);
    expect(r3.code).toBe(0);
    expect(r3.stdout).toMatch(/prepare: restored from cache/);
    expect(r3.stdout).toMatch(/train: done/);
  });
});

describe('gc', () => {
  it('dry run by default; --force removes what the lock no longer needs; the workspace still checks out', async () => {
    repo = setup();
    await repo.run(['repro']);
    repo.write({ 'params.yaml': 'scale: 1\nlr: 0.5\n' });
    await repo.run(['repro']);
    const before = cacheFiles().length;
    const dry = await repo.run(['gc']);
    expect(dry.code).toBe(0);
    // The lr=0.1 model and its (uncached, but run-cache-kept) metrics file, and the run-cache entry that needed them.
    expect(dry.stdout).toMatch(/would remove 2 objects \(\d+(\.\d)? [KB]+\) and 1 run-cache entry/);
    expect(cacheFiles().length).toBe(before);
    const real = await repo.run(['gc', '--force']);
    expect(real.stdout).toMatch(/removed 2 objects .* and 1 run-cache entry/);
    expect(cacheFiles().length).toBe(before - 3);
    repo.rm('data');
    repo.rm('model.bin');
    expect((await repo.run(['checkout'])).code).toBe(0);
    expect(repo.read('model.bin')).toContain('lr 0.5');
  });

  it("--all-branches keeps what another branch's pipeline.lock needs", async () => {
    repo = setup();
    execSync('git init -q -b main && git config user.email t@t && git config user.name t', { cwd: repo.dir });
    await repo.run(['repro']);
    execSync('git add -A && git commit -qm a && git checkout -q -b other', { cwd: repo.dir });
    repo.write({ 'params.yaml': 'scale: 1\nlr: 0.5\n' });
    await repo.run(['repro']);
    execSync('git add -A && git commit -qm b', { cwd: repo.dir });
    const everyBranch = await repo.run(['gc', '--all-branches']);
    expect(everyBranch.stdout).toMatch(/would remove 0 objects/);
    const onlyHere = await repo.run(['gc']);
    expect(onlyHere.stdout).toMatch(/would remove 2 objects/);
    const bad = await new TempRepo({ 'pipeline.yaml': PIPELINE, 'params.yaml': 'scale: 1\nlr: 1\n' });
    try {
      const r = await bad.run(['gc', '--all-tags']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--all-tags needs a git repository/);
    } finally {
      bad.cleanup();
    }
  });
});

describe('experiments and the cache', () => {
  it("exp apply restores an experiment's params and outputs byte-identically, without running anything", async () => {
    repo = setup();
    await repo.run(['repro']);
    const grid = await repo.run(['exp', 'run', '-S', 'lr=0.3,0.9', '--queue']);
    expect(grid.code).toBe(0);
    const all = await repo.run(['exp', 'run', '--run-all', '-j', '2']);
    expect(all.code).toBe(0);
    const show = JSON.parse((await repo.run(['exp', 'show', '--json'])).stdout) as { experiments: { name: string; params: unknown }[] };
    const exp = show.experiments.find((e) => JSON.stringify(e.params).includes('0.9'))!;
    expect(exp).toBeDefined();
    expect(repo.read('model.bin')).toContain('lr 0.1'); // workspace untouched by the queued runs
    const runsBefore = runsOf();
    const apply = await repo.run(['exp', 'apply', exp.name]);
    expect(apply.code, apply.stderr).toBe(0);
    expect(repo.read('params.yaml')).toContain('lr: 0.9');
    expect(repo.read('model.bin')).toContain('lr 0.9');
    expect(runsOf()).toBe(runsBefore);
    const status = await repo.run(['status']);
    expect(status.stdout).toContain('up to date');
  });
});
