import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { TempRepo } from '../helpers.js';

// `exp run -S` without --queue reproduces in the user's workspace, in the exp process itself (no child `lockstep repro`).
const PIPELINE = `stages:
  train:
    cmd: >-
      node -e "require('fs').writeFileSync('m.json', JSON.stringify({score: \${train.lr} * 10}))"
    params: [train.lr]
    metrics:
      - m.json: {cache: false}
  downstream:
    cmd: >-
      node -e "require('fs').writeFileSync('d.txt', require('fs').readFileSync('m.json', 'utf8'))"
    deps: [m.json]
    outs: [d.txt]
`;

let repo: TempRepo;
afterEach(() => repo?.cleanup());

describe('exp run in the workspace', () => {
  it('runs from the repository root when started in a subfolder, and records what repro left', async () => {
    repo = new TempRepo({ 'pipeline.yaml': PIPELINE, 'params.yaml': 'train:\n  lr: 0.1\n', 'sub/keep.txt': '' });
    const r = await repo.run(['exp', 'run', '-S', 'train.lr=0.5', '--name', 'half'], { cwd: repo.path('sub') });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 stages: 2 ran/);
    expect(repo.read('d.txt')).toBe('{"score":5}');
    const show = JSON.parse((await repo.run(['exp', 'show', '--json'])).stdout);
    expect(show.experiments[0]).toMatchObject({ name: 'half', status: 'success', metrics: { score: 5 } });
    expect(fs.existsSync(repo.path('sub/m.json'))).toBe(false);
  });

  it('a repro that cannot start (the repository lock is held) is printed as repro prints it and recorded as failed, exit 1, no stack trace', async () => {
    repo = new TempRepo({ 'pipeline.yaml': PIPELINE, 'params.yaml': 'train:\n  lr: 0.1\n' });
    // A live holder: this test's own process.
    repo.write({ '.lockstep/repo.lock': JSON.stringify({ pid: process.pid, what: 'repro', since: new Date().toISOString() }) });
    const r = await repo.run(['exp', 'run', '-S', 'train.lr=0.5', '--name', 'blocked']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: another lockstep \(pid \d+, running 'repro' since .*\) holds the repository lock$/m);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(r.stdout).toMatch(/experiment blocked: failed in/);
    const rec = JSON.parse(repo.read('.lockstep/exps/blocked.json'));
    expect(rec).toMatchObject({ status: 'failed', error: 'repro exited with code 3' });
  });

  it('Ctrl-C stops the stage, leaves no experiment record and exits 130, as repro does', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:\n  slow:\n    cmd: touch started && sleep 30 && echo \${train.lr} > out.txt\n    params: [train.lr]\n    outs: [out.txt]\n`,
      'params.yaml': 'train:\n  lr: 0.1\n',
    });
    const run = repo.spawn(['exp', 'run', '-S', 'train.lr=0.5', '--name', 'stopped']);
    const deadline = Date.now() + 20_000;
    while (!repo.exists('started') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    expect(repo.exists('started')).toBe(true);
    const t0 = Date.now();
    run.kill('SIGINT'); // the exp process alone: it runs the reproduction itself
    const r = await run;
    expect(r.exitCode).toBe(130);
    expect(Date.now() - t0).toBeLessThan(10_000); // the 30-second stage was ended, not waited for
    expect(r.stderr).toContain('SIGINT received: stopping running stages');
    expect(repo.exists('out.txt')).toBe(false);
    expect(repo.exists('.lockstep/exps/stopped.json')).toBe(false);
  });

  it("a failing stage fails the experiment with repro's exit code recorded", async () => {
    repo = new TempRepo({
      'pipeline.yaml': PIPELINE.replace('JSON.stringify({score: ${train.lr} * 10})', 'process.exit(4)'),
      'params.yaml': 'train:\n  lr: 0.1\n',
    });
    const r = await repo.run(['exp', 'run', '-S', 'train.lr=0.5', '--name', 'bad']);
    expect(r.code).toBe(1);
    const rec = JSON.parse(repo.read('.lockstep/exps/bad.json'));
    expect(rec.status).toBe('failed');
    expect(rec.error).toMatch(/^repro exited with code \d+$/);
  });
});
