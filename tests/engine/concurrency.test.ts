import fs from 'node:fs';
import { execSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { TempRepo, statesOf } from '../helpers.js';

let repo: TempRepo;
afterEach(() => repo?.cleanup());

async function waitFor(cond: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

function processesMatching(marker: string): string {
  try {
    return execSync(`pgrep -f -a '${marker.replace('.', '[.]')}'`, { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

describe('parallel stages', () => {
  it('-j N runs independent stages at the same time, with output prefixed by stage', async () => {
    const stages = ['a', 'b', 'c', 'd']
      .map(
        (n) => `  ${n}:\n    cmd: sh -c 'date +%s%N > ${n}.start; echo hello from ${n}; sleep 0.6; date +%s%N > ${n}.end'\n    outs: [${n}.start, ${n}.end]\n`,
      )
      .join('');
    repo = new TempRepo({ 'pipeline.yaml': `stages:\n${stages}` });
    const r = await repo.run(['repro', '-j', '4']);
    expect(r.code).toBe(0);
    const starts = ['a', 'b', 'c', 'd'].map((n) => Number(repo.read(`${n}.start`)));
    const ends = ['a', 'b', 'c', 'd'].map((n) => Number(repo.read(`${n}.end`)));
    // every stage started before any finished: they overlapped
    expect(Math.max(...starts)).toBeLessThan(Math.min(...ends));
    for (const n of ['a', 'b', 'c', 'd']) expect(r.stdout).toContain(`  ${n} | hello from ${n}`);
  });

  it('-j 1 runs one at a time', async () => {
    const stages = ['a', 'b']
      .map((n) => `  ${n}:\n    cmd: sh -c 'date +%s%N > ${n}.start; sleep 0.3; date +%s%N > ${n}.end'\n    outs: [${n}.start, ${n}.end]\n`)
      .join('');
    repo = new TempRepo({ 'pipeline.yaml': `stages:\n${stages}` });
    expect((await repo.run(['repro'])).code).toBe(0);
    expect(Number(repo.read('a.end'))).toBeLessThan(Number(repo.read('b.start')));
  });

  it('a downstream stage waits for all its upstreams under -j', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  slow: {cmd: "sh -c 'sleep 0.5; echo s > slow.txt'", outs: [slow.txt]}
  fast: {cmd: echo f > fast.txt, outs: [fast.txt]}
  join: {cmd: cat slow.txt fast.txt > join.txt, deps: [slow.txt, fast.txt], outs: [join.txt]}
`,
    });
    expect((await repo.run(['repro', '-j', '3'])).code).toBe(0);
    expect(repo.read('join.txt')).toBe('s\nf\n');
  });
});

describe('interrupts and the repository lock', () => {
  const SLOW = `stages:
  first: {cmd: echo 1 > first.txt, outs: [first.txt]}
  slow:
    cmd: sh -c 'echo started > started.txt; sleep 31.4159; echo 2 > slow.txt'
    deps: [first.txt]
    outs: [slow.txt]
`;

  it('SIGTERM ends the children, keeps finished stages in the lock, and the interrupted stage reruns', async () => {
    repo = new TempRepo({ 'pipeline.yaml': SLOW });
    const child = repo.spawn(['repro']);
    await waitFor(() => repo.exists('started.txt'));
    expect(processesMatching('sleep 31.4159')).not.toBe('');
    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode).toBe(143);
    expect(r.stdout).toContain('slow: interrupted');
    await waitFor(() => processesMatching('sleep 31.4159') === '', 5000);
    const lock = YAML.parse(repo.read('pipeline.lock'));
    expect(Object.keys(lock.stages)).toEqual(['first']);
    expect(repo.exists('.lockstep/repo.lock')).toBe(false);
    const st = JSON.parse((await repo.run(['status', '--json'])).stdout);
    expect(st.stages.slow.stale).toBe(true);
    expect(st.stages.first.stale).toBe(false);
  });

  it('SIGINT (Ctrl-C) does the same with exit code 130', async () => {
    repo = new TempRepo({ 'pipeline.yaml': SLOW });
    const child = repo.spawn(['repro']);
    await waitFor(() => repo.exists('started.txt'));
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode).toBe(130);
    await waitFor(() => processesMatching('sleep 31.4159') === '', 5000);
  });

  it('a second repro stops with a clear message while one runs, or waits with --wait', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  slow: {cmd: "sh -c 'echo started > started.txt; sleep 1.5; echo 2 > slow.txt'", outs: [slow.txt]}
`,
    });
    const first = repo.spawn(['repro']);
    await waitFor(() => repo.exists('started.txt'));
    const second = await repo.run(['repro']);
    expect(second.code).toBe(3);
    expect(second.stderr).toMatch(/another lockstep \(pid \d+, running 'repro'.*\) holds the repository lock/);
    expect(second.stderr).toContain('--wait');
    const waiting = await repo.run(['repro', '--wait', '30', '--json']);
    expect(waiting.code).toBe(0);
    expect(statesOf(waiting.stdout)).toEqual({ slow: 'skipped' });
    expect((await first).exitCode).toBe(0);
    expect(YAML.parse(repo.read('pipeline.lock')).stages.slow.outs[0].path).toBe('slow.txt');
  });

  it('kill -9 of repro leaves a valid pipeline.lock holding the stages finished a second before', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  first: {cmd: echo 1 > first.txt, outs: [first.txt]}
  slow:
    cmd: sh -c 'sleep 1.5; echo started > started.txt; sleep 30.5'
    deps: [first.txt]
    outs: [slow.txt]
`,
    });
    const child = repo.spawn(['repro']);
    await waitFor(() => repo.exists('started.txt'));
    child.kill('SIGKILL');
    await child;
    execSync("pkill -f 'sleep 30[.]5' || true"); // a SIGKILLed runner cannot end its stage's process group
    const lock = YAML.parse(repo.read('pipeline.lock'));
    expect(Object.keys(lock.stages)).toEqual(['first']);
    // the next run takes over the dead run's repository lock and reruns only the unfinished stage
    repo.write({ 'pipeline.yaml': repo.read('pipeline.yaml').replace("sleep 30.5'", "echo done > slow.txt'") });
    const r = await repo.run(['repro', '--json']);
    expect(statesOf(r.stdout)).toEqual({ first: 'skipped', slow: 'done' });
  });

  it('a lock left by a dead process is taken over', async () => {
    repo = new TempRepo({ 'pipeline.yaml': 'stages:\n  a: {cmd: echo > a.txt, outs: [a.txt]}\n' });
    fs.mkdirSync(repo.path('.lockstep'));
    fs.writeFileSync(repo.path('.lockstep/repo.lock'), JSON.stringify({ pid: 999999, what: 'repro', since: 'then' }));
    expect((await repo.run(['repro'])).code).toBe(0);
  });
});
