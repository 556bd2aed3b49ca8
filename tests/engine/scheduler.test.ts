import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Executor, type ReproOptions, type StageRunner } from '../../runner/executor.js';
import type { Reporter, StageResult } from '../../runner/reporter.js';
import type { Stage } from '../../runner/stage.js';
import type { RunResult } from '../../runner/process.js';
import { openWorkspace } from '../../runner/workspace.js';
import { TempRepo } from '../helpers.js';

/**
 * The executor's scheduling, in process and deterministic: a fake StageRunner
 * records what starts, and the test decides when each stage ends and what it
 * writes. No processes, no sleeps.
 */
let repo: TempRepo | undefined;
afterEach(() => repo?.cleanup());

interface Pending {
  readonly stage: Stage;
  finish(ok?: boolean, content?: string): void;
}

class FakeRunner implements StageRunner {
  readonly started: string[] = [];
  readonly running = new Map<string, Pending>();
  killed: NodeJS.Signals[] = [];
  private wake: (() => void) | undefined;

  constructor(private readonly root: string) {}

  run(stage: Stage): Promise<RunResult> {
    this.started.push(stage.name);
    return new Promise((resolve) => {
      this.running.set(stage.name, {
        stage,
        finish: (ok = true, content = `${stage.name}\n`) => {
          this.running.delete(stage.name);
          if (ok) for (const o of stage.outs) fs.writeFileSync(path.join(this.root, o.path), content);
          resolve(ok ? { ok: true } : { ok: false, failure: { kind: 'exit-code', code: 3 } });
        },
      });
      this.wake?.();
    });
  }

  /** Resolves once `n` stages are running (the executor hashes inputs asynchronously before it starts one). */
  async until(n: number): Promise<string[]> {
    while (this.running.size < n) await new Promise<void>((r) => (this.wake = r));
    return [...this.running.keys()].sort();
  }

  prewarm(): void {}
  discardWarm(): void {}
  killAll(signal: NodeJS.Signals): void {
    this.killed.push(signal);
    for (const p of [...this.running.values()]) p.finish(false);
  }
}

const quiet: Reporter = { started: () => undefined, line: () => undefined, finished: () => undefined, summary: () => undefined };

function executor(dir: string, opts: Partial<ReproOptions> = {}): { exec: Executor; runner: FakeRunner } {
  const runner = new FakeRunner(dir);
  const ws = openWorkspace(dir);
  const full: ReproOptions = { targets: [], force: false, single: false, downstream: false, dry: false, keepGoing: false, jobs: 1, ...opts };
  return { exec: new Executor(ws, full, { reporter: quiet, runner }), runner };
}

const states = (rs: readonly StageResult[]) => Object.fromEntries(rs.map((r) => [r.name, r.state]));

/** a and b independent; c needs both; d needs c; e independent of all. */
const DIAMOND = `stages:
  a: {cmd: x, deps: [in.txt], outs: [a.txt]}
  b: {cmd: x, deps: [in.txt], outs: [b.txt]}
  c: {cmd: x, deps: [a.txt, b.txt], outs: [c.txt]}
  d: {cmd: x, deps: [c.txt], outs: [d.txt]}
  e: {cmd: x, deps: [in.txt], outs: [e.txt]}
`;

describe('scheduling through the StageRunner seam', () => {
  it('-j 2 runs at most two at once, and a stage only after everything it needs', async () => {
    repo = new TempRepo({ 'pipeline.yaml': DIAMOND, 'in.txt': 'x\n' });
    const { exec, runner } = executor(repo.dir, { jobs: 2 });
    const done = exec.run();
    expect(await runner.until(2)).toEqual(['a', 'b']);
    runner.running.get('a')!.finish();
    expect(await runner.until(2)).toEqual(['b', 'e']); // c still waits for b
    expect(runner.running.size).toBe(2);
    runner.running.get('b')!.finish();
    expect(await runner.until(2)).toEqual(['c', 'e']);
    runner.running.get('e')!.finish();
    runner.running.get('c')!.finish();
    await runner.until(1);
    runner.running.get('d')!.finish();
    expect(states(await done)).toEqual({ a: 'done', b: 'done', c: 'done', d: 'done', e: 'done' });
    expect(runner.started).toEqual(['a', 'b', 'e', 'c', 'd']);
  });

  it('a failure stops new work; with -k the stages that do not depend on it still run', async () => {
    for (const keepGoing of [false, true]) {
      repo = new TempRepo({ 'pipeline.yaml': DIAMOND, 'in.txt': 'x\n' });
      const { exec, runner } = executor(repo.dir, { keepGoing });
      const done = exec.run();
      await runner.until(1);
      runner.running.get('a')!.finish(false);
      if (keepGoing) {
        for (const n of ['b', 'e']) {
          await runner.until(1);
          runner.running.get(n)!.finish();
        }
      }
      const s = states(await done);
      expect(s.a).toBe('failed');
      expect([s.c, s.d]).toEqual(['blocked', 'blocked']);
      expect([s.b, s.e]).toEqual(keepGoing ? ['done', 'done'] : ['not-run', 'not-run']);
      repo.cleanup();
    }
    repo = undefined;
  });

  it('early cutoff: stages whose outputs come out the same leave their dependants skipped', async () => {
    repo = new TempRepo({ 'pipeline.yaml': DIAMOND, 'in.txt': 'x\n' });
    {
      const { exec, runner } = executor(repo.dir, { jobs: 5 });
      const done = exec.run();
      for (let i = 0; i < 5; i++) {
        const [n] = await runner.until(1);
        runner.running.get(n!)!.finish();
      }
      await done;
    }
    // A new input for a, b and e: they rerun, and write exactly what they wrote before.
    repo.write({ 'in.txt': 'y\n' });
    const { exec, runner } = executor(repo.dir, { jobs: 5 });
    const done = exec.run();
    expect(await runner.until(3)).toEqual(['a', 'b', 'e']);
    for (const n of ['a', 'b', 'e']) runner.running.get(n)!.finish();
    const s = states(await done);
    expect(runner.started.sort()).toEqual(['a', 'b', 'e']);
    expect([s.a, s.b, s.e, s.c, s.d]).toEqual(['done', 'done', 'done', 'skipped', 'skipped']);
  });

  it('a wide and deep graph: never more than -j at once, each stage only after all it needs, all in the end', async () => {
    // 12 chains of 8; from the third layer on, each stage also needs the previous layer of the next chain.
    const chains = 12;
    const length = 8;
    let y = 'stages:\n';
    const ups = new Map<string, string[]>();
    for (let c = 0; c < chains; c++) {
      for (let i = 0; i < length; i++) {
        const deps = i === 0 ? [] : [`c${c}s${i - 1}`, ...(i >= 2 ? [`c${(c + 1) % chains}s${i - 1}`] : [])];
        ups.set(`c${c}s${i}`, deps);
        y += `  c${c}s${i}: {cmd: x, deps: [${['in.txt', ...deps.map((d) => `${d}.txt`)].join(', ')}], outs: [c${c}s${i}.txt]}\n`;
      }
    }
    repo = new TempRepo({ 'pipeline.yaml': y, 'in.txt': 'x\n' });
    const { exec, runner } = executor(repo.dir, { jobs: 3 });
    const done = exec.run();
    const finished = new Set<string>();
    let seed = 7;
    while (finished.size < chains * length) {
      const running = await runner.until(1);
      expect(running.length).toBeLessThanOrEqual(3);
      for (const n of running) for (const u of ups.get(n)!) expect(finished.has(u), `${n} started before ${u} finished`).toBe(true);
      // Finish one of the running stages, picked by a seeded PRNG, so completions come in varied orders.
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const n = running[seed % running.length]!;
      finished.add(n);
      runner.running.get(n)!.finish();
    }
    const s = states(await done);
    expect(Object.values(s).every((x) => x === 'done')).toBe(true);
    expect(runner.started).toHaveLength(chains * length);
  });

  it('an interrupt ends what runs (through the runner) and marks the rest interrupted; the lock keeps what finished', async () => {
    repo = new TempRepo({ 'pipeline.yaml': DIAMOND, 'in.txt': 'x\n' });
    const { exec, runner } = executor(repo.dir, { jobs: 2 });
    const done = exec.run();
    await runner.until(2);
    runner.running.get('b')!.finish();
    await runner.until(2);
    exec.interrupt();
    const s = states(await done);
    expect(runner.killed).toEqual(['SIGTERM']);
    expect(s.b).toBe('done');
    expect([s.a, s.e]).toEqual(['interrupted', 'interrupted']);
    expect([s.c, s.d]).toEqual(['interrupted', 'interrupted']);
    const lock = repo.read('pipeline.lock');
    expect(lock).toMatch(/^ {2}b:$/m);
    expect(lock).not.toMatch(/^ {2}a:$/m);
  });
});
