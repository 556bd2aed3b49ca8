import fs from 'node:fs';
import { execSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { TempRepo } from '../helpers.js';

let repo: TempRepo;
afterEach(() => repo?.cleanup());

// score = 10·lr + seed/100: a deterministic "model" whose metric we can predict.
const PIPELINE = `stages:
  train:
    cmd: >-
      node -e "const lr=\${train.lr}, seed=\${split.seed};
      require('fs').writeFileSync('metrics.json', JSON.stringify({score: 10*lr + seed/100, loss: 1 - lr}))"
    params: [train.lr, split.seed]
    metrics:
      - metrics.json: {cache: false}
`;

function gitRepo(): TempRepo {
  const r = new TempRepo({ 'pipeline.yaml': PIPELINE, 'params.yaml': '# tuning\ntrain:\n  lr: 0.1 # learning rate\nsplit:\n  seed: 1\n' });
  execSync('git init -q && git config user.email t@t && git config user.name t', { cwd: r.dir });
  return r;
}

function commitAll(msg: string): void {
  execSync(`git add -A && git commit -qm "${msg}"`, { cwd: repo.dir });
}

/** Alive and not a zombie waiting to be reaped. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function snapshot(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of ['params.yaml', 'pipeline.lock', 'metrics.json']) out[f] = repo.exists(f) ? repo.read(f) : '';
  return out;
}

describe('params diff and metrics diff', () => {
  it('compare HEAD~1, HEAD and the workspace, in text, Markdown and JSON', async () => {
    repo = gitRepo();
    expect((await repo.run(['repro'])).code).toBe(0);
    commitAll('first');
    repo.write({ 'params.yaml': '# tuning\ntrain:\n  lr: 0.3 # learning rate\nsplit:\n  seed: 1\n' });
    expect((await repo.run(['repro'])).code).toBe(0);
    commitAll('second');

    const p = await repo.run(['params', 'diff', 'HEAD~1', 'HEAD']);
    expect(p.code).toBe(0);
    expect(p.stdout).toMatch(/params\.yaml\s+train\.lr\s+0\.1\s+0\.3/);
    expect(p.stdout).not.toContain('split.seed');

    const m = await repo.run(['metrics', 'diff', 'HEAD~1', '--md']);
    expect(m.stdout).toContain('| metrics.json | score | 1.01 | 3.01 | +2 |');
    expect(m.stdout).toContain('| metrics.json | loss | 0.9 | 0.7 | -0.2 |');

    const j = JSON.parse((await repo.run(['metrics', 'diff', 'HEAD~1', 'HEAD', '--json'])).stdout);
    expect(j.changes).toEqual([
      { path: 'metrics.json', key: 'loss', old: 0.9, new: 0.7, change: expect.closeTo(-0.2, 9) },
      { path: 'metrics.json', key: 'score', old: 1.01, new: 3.01, change: expect.closeTo(2, 9) },
    ]);
    expect((await repo.run(['params', 'diff'])).stdout).toContain('No params changed between HEAD and workspace.');
    const show = await repo.run(['metrics', 'show', 'HEAD~1', 'workspace']);
    expect(show.stdout).toMatch(/HEAD~1\s+metrics\.json\s+score\s+1\.01/);
    expect(show.stdout).toMatch(/workspace\s+metrics\.json\s+score\s+3\.01/);
  });

  it('name an unknown revision, and refuse revisions outside git', async () => {
    repo = gitRepo();
    await repo.run(['repro']);
    commitAll('one');
    const r = await repo.run(['params', 'diff', 'nosuchrev']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown git revision 'nosuchrev'");
    const plain = new TempRepo({ 'pipeline.yaml': PIPELINE, 'params.yaml': 'train: {lr: 1}\nsplit: {seed: 1}\n' });
    try {
      const r2 = await plain.run(['metrics', 'diff']);
      expect(r2.stderr).toContain('is not in a git repository');
    } finally {
      plain.cleanup();
    }
  });
});

describe('experiments', () => {
  it('exp run -S edits params.yaml (keeping comments), runs, and records the result', async () => {
    repo = gitRepo();
    const r = await repo.run(['exp', 'run', '-S', 'train.lr=0.5', '--name', 'big-lr']);
    expect(r.code, r.stderr).toBe(0);
    expect(repo.read('params.yaml')).toBe('# tuning\ntrain:\n  lr: 0.5 # learning rate\nsplit:\n  seed: 1\n');
    expect(JSON.parse(repo.read('metrics.json')).score).toBe(5.01);
    const show = JSON.parse((await repo.run(['exp', 'show', '--json'])).stdout);
    expect(show.experiments).toHaveLength(1);
    expect(show.experiments[0]).toMatchObject({
      name: 'big-lr',
      status: 'success',
      metrics: { score: 5.01, loss: 0.5 },
      overrides: { 'params.yaml': { 'train.lr': 0.5 } },
    });
  });

  it('a grid of 6 queued experiments runs with -j 2 in temporary copies: workspace untouched, all recorded', async () => {
    repo = gitRepo();
    await repo.run(['repro']);
    commitAll('base');
    const before = snapshot();
    const q = await repo.run(['exp', 'run', '-S', 'train.lr=0.1,0.2,0.3', '-S', 'split.seed=1,2', '--queue']);
    expect(q.code).toBe(0);
    expect(q.stdout.match(/^queued /gm)).toHaveLength(6);
    expect(snapshot()).toEqual(before);
    const run = await repo.run(['exp', 'run', '--run-all', '-j', '2']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('6 succeeded, 0 failed');
    expect(snapshot()).toEqual(before);
    expect(execSync('git status --porcelain', { cwd: repo.dir, encoding: 'utf8' })).toBe('');

    const show = JSON.parse((await repo.run(['exp', 'show', '--json'])).stdout);
    expect(show.experiments).toHaveLength(6);
    for (const e of show.experiments) {
      expect(e.status).toBe('success');
      expect(e.metrics.score).toBeCloseTo(10 * e.params['train.lr'] + e.params['split.seed'] / 100, 9);
    }
    expect(show.best.score).toBe(
      show.experiments.find((e: { params: Record<string, number> }) => e.params['train.lr'] === 0.3 && e.params['split.seed'] === 2).name,
    );
    expect(show.best.loss).toBe(
      show.best.score === undefined
        ? undefined
        : show.experiments.find((e: { params: Record<string, number> }) => e.params['train.lr'] === 0.3 && e.params['split.seed'] === 1).name,
    );

    const sorted = await repo.run(['exp', 'show', '--sort-by', 'score', '--csv']);
    const lines = sorted.stdout.trim().split('\n');
    expect(lines[0]).toBe('Experiment,Status,Created,split.seed,train.lr,loss,score');
    expect(lines[1]).toMatch(/,2,0\.3,0\.7( ★)?,3\.02 ★$/);
    expect(lines).toHaveLength(7);

    const md = await repo.run(['exp', 'show', '--md']);
    expect(md.stdout.split('\n')[1]).toBe('| --- | --- | --- | --- | --- | --- |'); // Markdown leaves out Created
  });

  it('exp diff compares two experiments; exp remove deletes them', async () => {
    repo = gitRepo();
    await repo.run(['exp', 'run', '-S', 'train.lr=0.1', '-n', 'a']);
    await repo.run(['exp', 'run', '-S', 'train.lr=0.2', '-n', 'b']);
    const d = await repo.run(['exp', 'diff', 'a', 'b']);
    expect(d.stdout).toMatch(/param\s+params\.yaml:train\.lr\s+0\.1\s+0\.2/);
    expect(d.stdout).toMatch(/metric\s+metrics\.json:score\s+1\.01\s+2\.01\s+\+1/);
    expect((await repo.run(['exp', 'remove', 'a'])).stdout).toContain('removed 1 experiment');
    const gone = await repo.run(['exp', 'diff', 'a', 'b']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain("no experiment named 'a'");
  });

  it('a failing experiment is recorded as failed and does not stop the others', async () => {
    repo = gitRepo();
    repo.write({ 'pipeline.yaml': PIPELINE.replace('const lr=', 'if (${train.lr} > 0.15) process.exit(4); const lr=') });
    await repo.run(['exp', 'run', '-S', 'train.lr=0.1,0.2,0.3', '--queue']);
    const r = await repo.run(['exp', 'run', '--run-all', '-j', '2']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('1 succeeded, 2 failed');
    const show = JSON.parse((await repo.run(['exp', 'show', '--json'])).stdout);
    expect(show.experiments.map((e: { status: string }) => e.status).sort()).toEqual(['failed', 'failed', 'success']);
  });

  it('Ctrl-C during --run-all ends the running experiments and leaves them queued', async () => {
    repo = gitRepo();
    const marks = repo.path('marks');
    fs.mkdirSync(marks);
    repo.write({
      'pipeline.yaml': PIPELINE.replace(
        'const lr=',
        `require('fs').writeFileSync('${marks}/' + process.pid, ''); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000); const lr=`,
      ),
      '.gitignore': 'marks/\n',
    });
    await repo.run(['exp', 'run', '-S', 'train.lr=0.1,0.2,0.3', '--queue']);
    const child = repo.spawn(['exp', 'run', '--run-all', '-j', '2']);
    const end = Date.now() + 20_000;
    while (fs.readdirSync(marks).length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    expect(fs.readdirSync(marks)).toHaveLength(2);
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode).toBe(130);
    expect(r.stderr).toContain('unfinished experiments stay queued');
    const show = JSON.parse((await repo.run(['exp', 'show', '--json'])).stdout);
    expect(show.experiments.map((e: { status: string }) => e.status)).toEqual(['queued', 'queued', 'queued']);
    // the stage processes are gone
    for (const pid of fs.readdirSync(marks)) expect(running(Number(pid))).toBe(false);
  });

  it('bad -S input is named', async () => {
    repo = gitRepo();
    let r = await repo.run(['exp', 'run', '-S', 'train.lrr=1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("param 'train.lrr' not found in params.yaml");
    expect(r.stderr).toContain("did you mean 'train.lr'?");
    r = await repo.run(['exp', 'run', '-S', 'other.yaml:x=1']);
    expect(r.stderr).toContain("params file 'other.yaml'");
    r = await repo.run(['exp', 'run', '-S', 'nonsense']);
    expect(r.stderr).toContain("-S expects key=value, got 'nonsense'");
    r = await repo.run(['exp', 'shw']);
    expect(r.stderr).toContain("did you mean 'show'?");
    r = await repo.run(['exp', 'show', '--sort-by', 'scor']);
    expect(r.stderr).toContain("cannot sort by 'scor'");
  });
});
