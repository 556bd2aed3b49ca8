import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { Claims, leaseAlive, FOREIGN_LEASE_TTL_MS, type Lease } from '../../runner/exp/claim.js';
import { currentOwner, ownerDead, processStart } from '../../runner/owner.js';
import { TempRepo } from '../helpers.js';
import { objectKey } from '../../runner/cache/layout.js';

const tmpDirs: string[] = [];
afterEach(() => {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-claims-'));
  tmpDirs.push(d);
  return d;
}

/** A pid that certainly belonged to a process that has exited. */
async function deadPid(): Promise<number> {
  const c = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => c.once('exit', r));
  return c.pid!;
}

describe('owners and leases (unit)', () => {
  it('knows this process is alive and an exited or reused pid is dead', async () => {
    const me = currentOwner();
    expect(me.start).toMatch(/^\d+$/);
    expect(ownerDead(me)).toBe(false);
    expect(ownerDead({ ...me, pid: await deadPid() })).toBe(true);
    // Same pid, other start time: the pid was reused by someone else.
    expect(ownerDead({ ...me, start: String(Number(me.start) + 1) })).toBe(true);
    expect(processStart(await deadPid())).toBeUndefined();
  });

  it('expires a lease from another host only by its age', () => {
    const l: Lease = { pid: 1, host: 'elsewhere.example', token: 't', since: '', gen: 0, dir: '' };
    expect(leaseAlive(l, Date.now())).toBe(true);
    expect(leaseAlive(l, Date.now() - FOREIGN_LEASE_TTL_MS - 1)).toBe(false);
  });
});

describe('claims (unit)', () => {
  it('gives a name to one claimant, passes over a dead claim, and cleans it up on release', async () => {
    const c = new Claims(tmp());
    const a = c.tryClaim('exp-1', '/x')!;
    expect(a.gen).toBe(0);
    expect(c.tryClaim('exp-1', '/y')).toBeUndefined(); // held by a live process (this one)
    expect(c.held('exp-1', a)).toBe(true);
    c.release('exp-1', a);
    expect(c.held('exp-1', a)).toBe(false);

    // A claim whose runner died: the next claimant takes generation 1, and releasing removes both.
    const dead = { ...currentOwner(), pid: await deadPid(), token: 'dead', since: '', gen: 0, dir: '' };
    fs.writeFileSync(path.join(c.dir, 'exp-2@0.lease'), JSON.stringify(dead));
    const b = c.tryClaim('exp-2', '/z')!;
    expect(b.gen).toBe(1);
    expect(c.tryClaim('exp-2', '/z')).toBeUndefined();
    c.release('exp-2', b);
    expect(fs.readdirSync(c.dir).filter((f) => f.endsWith('.lease'))).toEqual([]);
  });

  it('lets exactly one of many racing processes claim each name', async () => {
    const dir = tmp();
    const go = path.join(dir, 'go');
    const end = path.join(dir, 'end');
    // Each waits for the same start, claims, reports, and stays alive (its claims live) until told to end.
    const script = `
      const fs = await import('node:fs');
      const { Claims } = await import(${JSON.stringify(path.resolve('dist/runner/exp/claim.js'))});
      const c = new Claims(${JSON.stringify(path.join(dir, 'claims'))});
      const nap = () => new Promise((r) => setTimeout(r, 5));
      while (!fs.existsSync(${JSON.stringify(go)})) await nap();
      const got = [];
      for (let i = 0; i < 30; i++) if (c.tryClaim('e' + i, '')) got.push(i);
      process.stdout.write(JSON.stringify(got) + '\\n');
      while (!fs.existsSync(${JSON.stringify(end)})) await nap();
    `;
    const outs: string[] = [];
    const runs = Array.from({ length: 4 }, (_, k) => {
      const p = spawn(process.execPath, ['--input-type=module', '-e', script]);
      outs[k] = '';
      p.stdout.on('data', (d) => (outs[k] += d));
      return new Promise<void>((res) => p.once('close', () => res()));
    });
    await new Promise((r) => setTimeout(r, 300));
    fs.writeFileSync(go, '');
    await until('every claimant reported', () => outs.every((o) => o.endsWith('\n')), 20_000);
    fs.writeFileSync(end, '');
    await Promise.all(runs);
    const all = outs.flatMap((o) => JSON.parse(o) as number[]).sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });
});

// ---------------------------------------------------------------------------
// End to end: the real CLI on temporary repositories.

const STAGE = `const fs = require('fs');
const [name, v] = process.argv.slice(2);
const log = process.env.EXP_LOG;
if (log) fs.appendFileSync(log, 'start ' + name + ' ' + v + '\\n');
const gate = process.env.EXP_GATE;
if (name === 'b' && gate) while (!fs.existsSync(gate)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
if (process.env.EXP_SLEEP_MS) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(process.env.EXP_SLEEP_MS));
fs.writeFileSync(name + '.txt', name + ':' + v + '\\n' + (name === 'b' ? fs.readFileSync('a.txt', 'utf8') : ''));
if (log) fs.appendFileSync(log, 'done ' + name + ' ' + v + '\\n');
`;

const PIPELINE = `stages:
  a:
    cmd: node stage.js a \${p.v}
    deps: [stage.js]
    params: [p.v]
    outs: [a.txt]
  b:
    cmd: node stage.js b \${p.v}
    deps: [stage.js, a.txt]
    params: [p.v]
    outs: [b.txt]
`;

let repo: TempRepo | undefined;
afterEach(() => {
  repo?.cleanup();
  repo = undefined;
});

/** A repository, and a folder outside it for the stage log, the gate file and the temporary copies (TMPDIR). */
function setup(): { repo: TempRepo; out: string; env: Record<string, string> } {
  repo = new TempRepo({ 'pipeline.yaml': PIPELINE, 'params.yaml': 'p:\n  v: 0\n', 'stage.js': STAGE });
  const out = tmp();
  fs.mkdirSync(path.join(out, 'tmp'));
  return { repo, out, env: { EXP_LOG: path.join(out, 'log'), EXP_GATE: path.join(out, 'gate'), TMPDIR: path.join(out, 'tmp') } };
}

function logLines(out: string): string[] {
  return fs.existsSync(path.join(out, 'log')) ? fs.readFileSync(path.join(out, 'log'), 'utf8').trim().split('\n') : [];
}

async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function records(r: TempRepo): Record<string, { status: string; lease?: Lease }> {
  const dir = r.path('.lockstep/exps');
  return Object.fromEntries(
    fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => [f.slice(0, -5), JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'))]),
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/s.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('experiments against gc and each other', () => {
  it('gc -f during --run-all: the runs keep going, and exp apply afterwards restores their outputs', async () => {
    const { repo, out, env } = setup();
    expect((await repo.run(['exp', 'run', '-S', 'p.v=1,2', '--queue'], { env })).code).toBe(0);
    const runAll = repo.spawn(['exp', 'run', '--run-all', '-j', '2'], { env });
    // Both experiments have stored a.txt in the shared cache and wait in stage b.
    await until('both experiments in stage b', () => logLines(out).filter((l) => l.startsWith('start b')).length === 2);
    const gc = await repo.run(['gc', '-f'], { env });
    expect(gc.code, gc.stderr).toBe(0);
    expect(gc.stderr).toContain('2 experiments are running: kept what they may need');
    fs.writeFileSync(env.EXP_GATE!, '');
    const r = await runAll;
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('2 succeeded, 0 failed');
    expect(Object.values(records(repo)).map((x) => x.status)).toEqual(['success', 'success']);

    // A second gc after the runs: their recorded outputs stay.
    expect((await repo.run(['gc', '-f'], { env })).code).toBe(0);
    const apply = await repo.run(['exp', 'apply', 'exp-2'], { env });
    expect(apply.code, apply.stderr).toBe(0);
    expect(repo.read('a.txt')).toBe('a:2\n');
    expect(repo.read('b.txt')).toBe('b:2\na:2\n');
    expect(fs.readdirSync(env.TMPDIR!)).toEqual([]); // temporary copies removed
  });

  it('an experiment that re-uses an object gc removed under it is still recorded whole', async () => {
    const { repo, env } = setup();
    // Make a.txt's object ('a:5') exist in the cache, then leave it needed by nothing.
    const open = { ...env, EXP_GATE: '' };
    repo.write({ 'params.yaml': 'p:\n  v: 5\n' });
    expect((await repo.run(['repro'], { env: open })).code).toBe(0);
    const a5 = repo.path(path.join('.lockstep/cache', objectKey(/a\.txt\n\s+xxh64: (\w+)/.exec(repo.read('pipeline.lock'))![1]!)));
    repo.write({ 'params.yaml': 'p:\n  v: 0\n' });
    expect((await repo.run(['repro'], { env: open })).code).toBe(0);
    // No run-cache entry names it either (and the run records none): gc may take it.
    repo.rm('.lockstep/cache/runs');
    // gc keeps, for a running experiment, what entered the cache (by ctime) since it started, less a second of
    // clock slack: let that second pass, so a:5 counts as stored before the run and nothing else protects it.
    await new Promise((r) => setTimeout(r, 1100));
    expect((await repo.run(['exp', 'run', '-S', 'p.v=5', '--queue'], { env })).code).toBe(0);
    const runAll = repo.spawn(['exp', 'run', '--run-all'], { env: { ...env, LOCKSTEP_RUN_CACHE_READ_ONLY: '1' } });
    const out = path.dirname(env.EXP_LOG!);
    // (the first 'start b 5' was the workspace's repro above)
    await until('stage b', () => logLines(out).filter((l) => l === 'start b 5').length === 2);
    // The run's own pipeline.lock is flushed within a second of a stage finishing (a's, just now); once that
    // flush is behind us nothing writes it until b, held at the gate, finishes: take gc into that window.
    await new Promise((r) => setTimeout(r, 1500));
    fs.rmSync(path.join(records(repo)['exp-1']!.lease!.dir, 'pipeline.lock'), { force: true });
    // a:5 was stored long before the run started and is named by no record: this gc removes it.
    const gc = await repo.run(['gc', '-f'], { env });
    expect(gc.code, gc.stderr).toBe(0);
    expect(gc.stdout).toMatch(/removed \d+ object/);
    expect(fs.existsSync(a5)).toBe(false);
    fs.writeFileSync(env.EXP_GATE!, '');
    expect((await runAll).exitCode).toBe(0);
    // The runner put it back from its copy before recording the experiment.
    const apply = await repo.run(['exp', 'apply', 'exp-1'], { env });
    expect(apply.code, apply.stderr).toBe(0);
    expect(repo.read('a.txt')).toBe('a:5\n');
  });

  it('two --run-all at once run each queued experiment exactly once', async () => {
    const { repo, out, env } = setup();
    expect((await repo.run(['exp', 'run', '-S', 'p.v=1,2,3,4', '--queue'], { env })).code).toBe(0);
    const slow = { ...env, EXP_GATE: '', EXP_SLEEP_MS: '300' };
    const [x, y] = await Promise.all([
      repo.spawn(['exp', 'run', '--run-all', '-j', '2'], { env: slow }),
      repo.spawn(['exp', 'run', '--run-all', '-j', '2'], { env: slow }),
    ]);
    expect(x.exitCode, `${x.stdout}\n${x.stderr}`).toBe(0);
    expect(y.exitCode, `${y.stdout}\n${y.stderr}`).toBe(0);
    const runsOfB = logLines(out)
      .filter((l) => l.startsWith('done b'))
      .sort();
    expect(runsOfB).toEqual(['done b 1', 'done b 2', 'done b 3', 'done b 4']);
    expect(Object.values(records(repo)).map((r) => r.status)).toEqual(['success', 'success', 'success', 'success']);
    // Between them they ran four.
    const ran = [x, y].map((r) => Number(/(\d+) succeeded/.exec(r.stdout as string)![1]));
    expect(ran[0]! + ran[1]!).toBe(4);
    expect(fs.readdirSync(repo.path('.lockstep/exps/claims'))).toEqual([]);
  });

  it('after kill -9 of --run-all, the next exp command requeues its experiments and removes what they left; --run-all then completes them', async () => {
    const { repo, out, env } = setup();
    expect((await repo.run(['exp', 'run', '-S', 'p.v=1,2', '--queue'], { env })).code).toBe(0);
    const runAll = repo.spawn(['exp', 'run', '--run-all', '-j', '2'], { env });
    await until('both experiments in stage b', () => logLines(out).filter((l) => l.startsWith('start b')).length === 2);
    const before = records(repo);
    const leases = Object.values(before).map((r) => r.lease!);
    expect(leases.map((l) => fs.existsSync(l.dir))).toEqual([true, true]);
    await until('the repro children recorded', () => Object.values(records(repo)).every((r) => r.lease?.child));
    const children = Object.values(records(repo)).map((r) => r.lease!.child!.pid);
    runAll.kill('SIGKILL');
    await runAll;
    // The runner is gone; its repro children and their stages still run, in copies nobody will clean.
    expect(children.every(alive)).toBe(true);

    const show = await repo.run(['exp', 'show', '--json'], { env });
    expect(show.code, show.stderr).toBe(0);
    expect(JSON.parse(show.stdout).experiments.map((e: { status: string }) => e.status)).toEqual(['queued', 'queued']);
    expect(show.stderr).toContain('requeued exp-1: the runner that was running it is gone');
    expect(show.stderr).toContain('requeued exp-2');
    expect(leases.map((l) => fs.existsSync(l.dir))).toEqual([false, false]);
    expect(fs.readdirSync(env.TMPDIR!)).toEqual([]);
    await until('the orphaned runs ended', () => !children.some(alive), 5000);
    expect(logLines(out).filter((l) => l.startsWith('done b'))).toEqual([]);

    // A second command finds nothing more to do.
    expect((await repo.run(['exp', 'show'], { env })).stderr).not.toContain('requeued');

    fs.writeFileSync(env.EXP_GATE!, '');
    const again = await repo.run(['exp', 'run', '--run-all', '-j', '2'], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('2 succeeded, 0 failed');
    expect(
      logLines(out)
        .filter((l) => l.startsWith('done b'))
        .sort(),
    ).toEqual(['done b 1', 'done b 2']);
    expect(Object.values(records(repo)).map((r) => r.status)).toEqual(['success', 'success']);
    expect(fs.readdirSync(env.TMPDIR!)).toEqual([]);
  });

  it('a finished experiment is recorded only while gc is not deciding: the runner waits for the gc lock', async () => {
    const { repo, out, env } = setup();
    const open = { ...env, EXP_GATE: '' };
    expect((await repo.run(['exp', 'run', '-S', 'p.v=1', '--queue'], { env: open })).code).toBe(0);
    // A gc at work (this test process, alive, holds its lock).
    const gcLock = repo.path('.lockstep/gc.lock');
    fs.writeFileSync(gcLock, JSON.stringify({ ...currentOwner(), what: 'gc', since: new Date().toISOString() }));
    const runAll = repo.spawn(['exp', 'run', '--run-all'], { env: open });
    await until('the run finished its stages', () => logLines(out).includes('done b 1'));
    await new Promise((r) => setTimeout(r, 1500));
    expect(records(repo)['exp-1']!.status).toBe('running'); // not recorded behind gc's back
    fs.rmSync(gcLock);
    const r = await runAll;
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(records(repo)['exp-1']!.status).toBe('success');

    // A gc lock left by a process that died is taken over, not waited on.
    fs.writeFileSync(gcLock, JSON.stringify({ ...currentOwner(), pid: await deadPid(), what: 'gc', since: '' }));
    const gc = await repo.run(['gc', '-f'], { env: open });
    expect(gc.code, gc.stderr).toBe(0);
    expect(fs.existsSync(gcLock)).toBe(false);
  });

  it('exp remove refuses a running experiment', async () => {
    const { repo, out, env } = setup();
    expect((await repo.run(['exp', 'run', '-S', 'p.v=1', '--queue', '--name', 'one'], { env })).code).toBe(0);
    const runAll = repo.spawn(['exp', 'run', '--run-all'], { env });
    await until('stage b', () => logLines(out).includes('start b 1'));
    const rm = await repo.run(['exp', 'remove', 'one'], { env });
    expect(rm.code).toBe(2);
    expect(rm.stderr).toMatch(/experiment 'one' is running \(pid \d+\); nothing was removed/);
    fs.writeFileSync(env.EXP_GATE!, '');
    expect((await runAll).exitCode).toBe(0);
    expect((await repo.run(['exp', 'remove', 'one'], { env })).code).toBe(0);
  });
});
