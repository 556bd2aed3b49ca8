import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { Queue } from 'bullmq';
import { TempRepo, filesUnder } from '../helpers.js';
import { RedisServer, alive, cloneOf, commit, freePort, pipelineRepo, sleep, startWorker, stopWorker, until, type WorkerProc } from './harness.js';

let redis: RedisServer;

beforeAll(async () => {
  redis = new RedisServer(await freePort());
  await redis.start();
});
afterAll(async () => {
  await redis?.stop();
});

interface Setup {
  repo: TempRepo;
  marks: string;
  remote: string;
  queue: string;
}

let n = 0;

/**
 * Per-test helpers whose cleanup runs when that test finishes (the tests run
 * concurrently and share nothing but the Redis server).
 */
function scope(ctx: TestContext) {
  const later = (f: () => unknown) => ctx.onTestFinished(async () => void (await f()));
  const setup = (extra: Record<string, unknown> = {}): Setup => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-q-'));
    const marks = path.join(tmp, 'marks');
    const remote = path.join(tmp, 'remote');
    fs.mkdirSync(marks);
    fs.mkdirSync(remote);
    const queue = `t${process.pid}-${++n}`;
    const repo = pipelineRepo(marks, { url: redis.url, queue, lock_duration_ms: 5000, stalled_interval_ms: 1000, ...extra }, remote);
    later(() => {
      repo.cleanup();
      fs.rmSync(tmp, { recursive: true, force: true });
    });
    return { repo, marks, remote, queue };
  };
  const worker = (dir: string, args: string[] = [], env: Record<string, string> = {}): WorkerProc => {
    const w = startWorker(dir, args, env);
    later(async () => {
      await stopWorker(w);
      fs.rmSync(dir, { recursive: true, force: true });
    });
    return w;
  };
  return { later, setup, worker };
}

interface Shown {
  name: string;
  status: string;
  worker?: string;
  overrides: Record<string, Record<string, unknown>>;
  metrics: Record<string, unknown>;
  error?: string;
}

async function show(repo: TempRepo): Promise<Shown[]> {
  const r = await repo.run(['exp', 'show', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { experiments: Shown[] }).experiments;
}

/** What an experiment computed, without when and where: params, metrics, lock entries. */
function comparable(repo: TempRepo): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const dir = repo.path('.lockstep/exps');
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const r = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    out.set(JSON.stringify(r.overrides), {
      status: r.status,
      params: r.params,
      paramsText: r.paramsText,
      metrics: r.metrics,
      metricsText: r.metricsText,
      lock: r.lock,
    });
  }
  return out;
}

function objectPath(root: string, hash: string): string {
  return path.join(root, 'files', 'xxh64', hash.slice(0, 2), hash.slice(2));
}

describe.concurrent('experiments on worker machines', () => {
  it('a grid of 6 on 3 workers gives the records and outputs of --run-all; queueing it again adds nothing', async (ctx) => {
    const { later, setup, worker } = scope(ctx);
    const { repo, remote, queue } = setup();
    commit(repo, 'pipeline');
    // Workers cloned before the last commit: they get it from the bundle the submitter puts on the remote.
    const clones = [cloneOf(repo), cloneOf(repo), cloneOf(repo)];
    expect((await repo.run(['repro'])).code).toBe(0);
    commit(repo, 'first run');
    const ws = clones.map((c) => worker(c));
    const grid = ['-S', 'train.lr=0.1,0.2,0.3', '-S', 'split.seed=1,2'];

    const sub = await repo.run(['exp', 'run', ...grid, '--distributed']);
    expect(sub.code, sub.stdout + sub.stderr).toBe(0);
    expect(sub.stdout.match(/^queued exp-\d on /gm)).toHaveLength(6);
    expect(sub.stdout).toContain('6 succeeded, 0 failed');
    expect(execSync('git status --porcelain', { cwd: repo.dir, encoding: 'utf8' })).toBe('');

    const shown = await show(repo);
    expect(shown).toHaveLength(6);
    expect(shown.every((e) => e.status === 'success')).toBe(true);
    const names = ws.map((w) => `${os.hostname()}:${w.proc.pid}`);
    const used = new Set(shown.map((e) => e.worker));
    for (const u of used) expect(names).toContain(u);
    expect(used.size).toBeGreaterThan(1);

    // The same grid, locally, in a clone at the same commit.
    const local = new TempRepo();
    later(() => local.cleanup());
    fs.rmSync(local.dir, { recursive: true });
    execSync(`git clone -q "${repo.dir}" "${local.dir}"`);
    expect((await local.run(['repro'])).code).toBe(0); // outputs are not in git: they are made (and cached) here
    expect((await local.run(['exp', 'run', ...grid, '--queue'])).code).toBe(0);
    const all = await local.run(['exp', 'run', '--run-all', '-j', '2']);
    expect(all.stdout).toContain('6 succeeded, 0 failed');
    const here = comparable(local);
    const there = comparable(repo);
    expect([...there.keys()].sort()).toEqual([...here.keys()].sort());
    for (const [k, v] of here) expect(there.get(k), k).toEqual(v);
    // Every output the workers made is on the remote, byte for byte what the local run made.
    let compared = 0;
    for (const rec of here.values() as Iterable<{ lock: Record<string, { outs: { path: string; hash: string }[] }> }>) {
      for (const e of Object.values(rec.lock)) {
        for (const o of e.outs) {
          if (o.path === 'metrics.json') continue; // cache: false — it lives in git and in the record
          expect(fs.readFileSync(objectPath(remote, o.hash)).equals(fs.readFileSync(objectPath(local.path('.lockstep/cache'), o.hash))), o.hash).toBe(true);
          compared++;
        }
      }
    }
    expect(compared).toBe(12);

    // Queueing the same grid again adds nothing, here or on the queue.
    const again = await repo.run(['exp', 'run', ...grid, '--distributed']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.match(/already ran with these params/g)).toHaveLength(6);
    expect(await show(repo)).toHaveLength(6);
    const status = JSON.parse((await repo.run(['queue', 'status', '--json'])).stdout);
    expect(status.jobs).toHaveLength(6);
    expect(status.jobs.every((j: { state: string }) => j.state === 'done')).toBe(true);

    // A remotely run experiment is applied with its outputs, fetched from the remote.
    fs.rmSync(repo.path('.lockstep/cache'), { recursive: true, force: true });
    const best = shown.reduce((a, b) => ((a.metrics.score as number) > (b.metrics.score as number) ? a : b));
    const apply = await repo.run(['exp', 'apply', best.name]);
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.stdout).toMatch(/fetched \d+ objects of exp-\d from 'origin'/);
    expect(repo.read('params.yaml')).toContain('lr: 0.3');
    expect(repo.read('model/weights.txt').split(',')).toHaveLength(50);
    const st = await repo.run(['status']);
    expect(st.stdout).not.toContain('changed');
    void queue;
  });

  it('a worker killed with kill -9 mid-stage: another takes the job over, finished stages are restored, one record results', async (ctx) => {
    const { setup, worker } = scope(ctx);
    const { repo, marks } = setup();
    commit(repo, 'pipeline');
    fs.writeFileSync(path.join(marks, 'block'), '');
    // A worker stopped politely (SIGTERM, as in a Kubernetes rollout) gives its job back at once.
    const w0 = worker(cloneOf(repo));
    const sub = repo.spawn(['exp', 'run', '-S', 'train.lr=0.7', '--name', 'long', '--distributed']);
    await until('train to start on the first worker', () => fs.readdirSync(marks).some((f) => f.startsWith('train-started-')));
    const running = (await show(repo))[0]!;
    expect(running).toMatchObject({ status: 'running', worker: `${os.hostname()}:${w0.proc.pid}` });
    expect((await repo.run(['exp', 'show'])).stdout).toMatch(new RegExp(`long\\s+running on ${os.hostname()}:${w0.proc.pid}`));
    w0.proc.kill('SIGTERM');
    expect((await w0.proc).exitCode).toBe(143);
    expect(w0.output()).toContain('↩ long: given back to the queue (worker stopping)');
    expect(JSON.parse((await repo.run(['queue', 'status', '--json'])).stdout).jobs[0].state).toBe('queued');
    for (const f of fs.readdirSync(marks)) if (f.startsWith('train-started-')) fs.rmSync(path.join(marks, f));

    const w1 = worker(cloneOf(repo));
    const started = await until('train to start on the second worker', () => fs.readdirSync(marks).find((f) => f.startsWith('train-started-')));
    const stagePid = Number(started.replace('train-started-', ''));
    expect(fs.readFileSync(path.join(marks, 'prep.log'), 'utf8')).toBe('x');
    w1.proc.kill('SIGKILL');
    await w1.proc;
    // The dead worker's run does not go on orphaned: its stage is ended too.
    await until('the orphaned stage to end', () => !alive(stagePid), 5000);
    fs.rmSync(path.join(marks, 'block'));
    const w2 = worker(cloneOf(repo));
    const r = await sub;
    expect(r.exitCode, `${r.stdout}\n${r.stderr}\n${w2.output()}`).toBe(0);
    expect(r.stdout).toContain('1 succeeded, 0 failed');
    // prep had finished on the dead worker: restored from the run-cache it pushed, not run again.
    expect(fs.readFileSync(path.join(marks, 'prep.log'), 'utf8')).toBe('x');
    expect(w2.output()).toContain('▶ long');
    const shown = await show(repo);
    expect(shown).toHaveLength(1);
    expect(shown[0]).toMatchObject({ name: 'long', status: 'success', worker: `${os.hostname()}:${w2.proc.pid}` });
    const log = await repo.run(['queue', 'logs', 'long']);
    expect(log.stdout).toContain('↺ prep: restored from run-cache');
    expect(log.stdout).toContain('✓ train: done');
  });

  it('a failed stage fails its job with the log kept; queue retry requeues it; other versions are refused', async (ctx) => {
    const { later, setup, worker } = scope(ctx);
    const { repo, marks, queue } = setup();
    commit(repo, 'pipeline');
    fs.writeFileSync(path.join(marks, 'broken'), '');
    const w = worker(cloneOf(repo), ['-j', '2']);
    const sub = await repo.run(['exp', 'run', '-S', 'train.lr=0.1,0.2', '--distributed']);
    expect(sub.code).toBe(1);
    expect(sub.stdout).toContain('0 succeeded, 2 failed');
    expect(sub.stdout).toMatch(/✗ exp-1: failed: train: failed in [\d.]+m?s: exit code 3 \(on .*; 'lockstep queue logs exp-1'\)/);
    const shown = await show(repo);
    expect(shown.map((e) => e.status)).toEqual(['failed', 'failed']);
    const log = await repo.run(['queue', 'logs', 'exp-2']);
    expect(log.code).toBe(0);
    expect(log.stdout).toContain('train is broken: lr 0.2');
    expect(log.stdout).toContain('✗ train: failed');
    // The log is an object on the remote: readable from a machine that has none of it in its cache.
    fs.rmSync(repo.path('.lockstep/cache'), { recursive: true, force: true });
    expect((await repo.run(['queue', 'logs', 'exp-1'])).stdout).toContain('train is broken: lr 0.1');
    const missing = await repo.run(['queue', 'logs', 'exp-9']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("no job named 'exp-9'");

    fs.rmSync(path.join(marks, 'broken'));
    const prepRuns = fs.readFileSync(path.join(marks, 'prep.log'), 'utf8');
    const retry = await repo.run(['queue', 'retry', '--failed']);
    expect(retry.code, retry.stderr).toBe(0);
    expect(retry.stdout).toContain('requeued exp-1');
    await until('the retried experiments to succeed', async () => (await show(repo)).every((e) => e.status === 'success'));
    // prep had succeeded: the retries restored it from the run-cache.
    expect(fs.readFileSync(path.join(marks, 'prep.log'), 'utf8')).toBe(prepRuns);

    // A job queued by another Lockstep version is refused, with both versions named.
    const q = new Queue(queue, { connection: { url: redis.url }, prefix: 'lockstep' });
    later(() => q.close());
    await q.add(
      'future',
      { kind: 'experiment', version: '9.9.9', name: 'future', commit: 'f'.repeat(40), remote: 'origin', overrides: {}, targets: [], submittedAt: '' },
      { jobId: 'xfuture' },
    );
    await until('the job to be refused', async () => (await q.getJob('xfuture'))?.failedReason);
    expect((await q.getJob('xfuture'))!.failedReason).toMatch(/refused by worker .*: it was queued by Lockstep 9\.9\.9 and this worker runs 0\.1\.0/);
    expect(w.output()).toContain('refused: it was queued by Lockstep 9.9.9');
    const status = await repo.run(['queue', 'status']);
    expect(status.stdout).toMatch(/future\s+failed/);
  });

  it('Redis restarted mid-grid: the submitter queues again what it lost, workers reconnect, every experiment recorded once', async (ctx) => {
    const { later, setup, worker } = scope(ctx);
    // A Redis of its own: the other tests run meanwhile.
    const own = new RedisServer(await freePort());
    await own.start();
    later(() => own.stop());
    const { repo, marks } = setup({ url: own.url });
    commit(repo, 'pipeline');
    fs.writeFileSync(path.join(marks, 'block'), '');
    const w = worker(cloneOf(repo));
    const sub = repo.spawn(['exp', 'run', '-S', 'train.lr=0.1,0.2,0.3', '--distributed']);
    await until('a job to start', () => fs.readdirSync(marks).some((f) => f.startsWith('train-started-')));
    await own.stop();
    await sleep(500);
    await own.start();
    fs.rmSync(path.join(marks, 'block'));
    const r = await sub;
    expect(r.exitCode, `${r.stdout}\n${r.stderr}\n${w.output()}`).toBe(0);
    expect(r.stdout).toContain('3 succeeded, 0 failed');
    expect(r.stdout).toMatch(/the scheduler had lost it; queued again/);
    // The worker says once that Redis went away, not at every reconnection attempt.
    expect((w.output().match(/warning: scheduler/g) ?? []).length).toBeLessThanOrEqual(1);
    const shown = await show(repo);
    expect(shown.map((e) => e.status)).toEqual(['success', 'success', 'success']);
    const mean = Array.from({ length: 50 }, (_, i) => i % 17).reduce((a, x) => a + x, 0) / 50;
    expect(shown.map((e) => e.metrics.score)).toEqual([0.1, 0.2, 0.3].map((lr) => expect.closeTo(mean * lr, 9)));
  });

  it('repro --distributed: each stage goes to a worker once its upstream is done; a restarted submitter picks up where it was', async (ctx) => {
    const { later, setup, worker } = scope(ctx);
    const { repo, marks, queue } = setup();
    commit(repo, 'pipeline');
    fs.writeFileSync(path.join(marks, 'block'), '');
    const w1 = worker(cloneOf(repo), ['-j', '2']);
    const w2 = worker(cloneOf(repo));
    const first = repo.spawn(['repro', '--distributed']);
    await until('train to start', () => fs.readdirSync(marks).some((f) => f.startsWith('train-started-'))).catch(async (e: Error) => {
      first.kill('SIGKILL');
      const r = await first;
      throw new Error(`${e.message}\n${String(r.stdout)}\n${String(r.stderr)}\n${w1.output()}\n${w2.output()}`);
    });
    // The submitter dies; started again, it finds prep's job done and train's running, by their ids.
    first.kill('SIGKILL');
    await first;
    fs.rmSync(path.join(marks, 'block'));
    const r = await repo.run(['repro', '--distributed']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/✓ prep: ran on \S+ in /);
    expect(r.stdout).toMatch(/✓ train: ran on \S+ in /);
    expect(r.stdout).toContain('2 stages on workers: 2 ran, 0 up to date');
    expect(fs.readFileSync(path.join(marks, 'prep.log'), 'utf8')).toBe('x');

    const q = new Queue(queue, { connection: { url: redis.url }, prefix: 'lockstep' });
    later(() => q.close());
    const jobs = await q.getJobs(['completed'], 0, -1);
    expect(jobs.map((j) => j.name).sort()).toEqual(['prep', 'train']);
    const [prep, train] = ['prep', 'train'].map((n) => jobs.find((j) => j.name === n)!);
    expect(train!.timestamp).toBeGreaterThanOrEqual(prep!.finishedOn!);

    // The workspace is as a local repro leaves it: same lock, outputs in place, nothing stale.
    expect((await repo.run(['status'])).stdout).toContain('up to date');
    const local = new TempRepo();
    later(() => local.cleanup());
    fs.rmSync(local.dir, { recursive: true });
    execSync(`git clone -q "${repo.dir}" "${local.dir}" && git -C "${local.dir}" checkout -q HEAD -- .`);
    expect((await local.run(['repro'])).code).toBe(0);
    expect(repo.read('pipeline.lock')).toBe(local.read('pipeline.lock'));
    expect(repo.read('model/weights.txt')).toBe(local.read('model/weights.txt'));
    expect(repo.read('metrics.json')).toBe(local.read('metrics.json'));
  });

  it('repro --distributed with a failing stage: exit 1, its log kept, the stages that succeeded recorded', async (ctx) => {
    const { setup, worker } = scope(ctx);
    const { repo, marks } = setup();
    commit(repo, 'pipeline');
    fs.writeFileSync(path.join(marks, 'broken'), '');
    const w = worker(cloneOf(repo));
    const p = repo.spawn(['repro', '--distributed']);
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    const res = await p;
    clearTimeout(timer);
    const r = { code: res.exitCode, stdout: String(res.stdout), stderr: String(res.stderr) };
    expect(r.code, `${r.stdout}\n${r.stderr}\n${w.output()}`).toBe(1);
    expect(r.stdout).toMatch(/✓ prep: ran on /);
    expect(r.stdout).toMatch(/✗ train: failed: train: failed in .*: exit code 3/);
    expect(r.stdout).toContain('2 stages on workers: 1 ran, 0 up to date, 1 failed or not run');
    expect(repo.read('pipeline.lock')).toContain('prep:');
    expect(repo.read('pipeline.lock')).not.toContain('train:');
    expect(repo.exists('data.txt')).toBe(true);
    expect((await repo.run(['queue', 'logs', 'train'])).stdout).toContain('train is broken: lr 0.1');
  });

  it('queue cancel takes queued jobs off and stops running ones; a cancelled experiment can be retried', async (ctx) => {
    const { setup, worker } = scope(ctx);
    const { repo, marks } = setup();
    commit(repo, 'pipeline');
    fs.writeFileSync(path.join(marks, 'block'), '');
    const sub = await repo.run(['exp', 'run', '-S', 'train.lr=0.1,0.2,0.3', '--distributed', '--no-wait']);
    expect(sub.code, sub.stderr).toBe(0);
    expect(sub.stdout.match(/^queued /gm)).toHaveLength(3);
    const c2 = await repo.run(['queue', 'cancel', 'exp-2']);
    expect(c2.stdout.trim()).toBe('cancelled exp-2');
    const w = worker(cloneOf(repo));
    await until('exp-1 to start', () => fs.readdirSync(marks).some((f) => f.startsWith('train-started-')));
    const c1 = await repo.run(['queue', 'cancel', 'exp-1']);
    expect(c1.stdout).toMatch(/^cancelling exp-1 \(running on \S+\)/);
    await until('exp-1 to be cancelled', async () => (await show(repo)).find((e) => e.name === 'exp-1')!.status === 'failed');
    expect(w.output()).toContain('✗ exp-1: cancelled');
    const all = await repo.run(['queue', 'cancel', '--all']);
    expect(all.code).toBe(0);
    await until('every experiment to be cancelled', async () => (await show(repo)).every((e) => e.status === 'failed' && /cancelled/.test(e.error ?? '')));
    // A cancelled job is gone from the queue: retry queues it again from the experiment's record.
    fs.rmSync(path.join(marks, 'block'));
    const retry = await repo.run(['queue', 'retry', 'exp-2']);
    expect(retry.code, retry.stderr).toBe(0);
    await until('exp-2 to succeed', async () => (await show(repo)).find((e) => e.name === 'exp-2')!.status === 'success');
  });

  it('a worker for untrusted code (read-only remote, read-only run-cache, no key) runs jobs and publishes nothing', async (ctx) => {
    const { setup, worker } = scope(ctx);
    const { repo, remote } = setup();
    commit(repo, 'pipeline');
    const clone = cloneOf(repo);
    fs.writeFileSync(path.join(clone, '.lockstep', 'config.local'), 'remotes:\n  origin:\n    read_only: true\n');
    const w = worker(clone, ['--once'], { LOCKSTEP_RUN_CACHE_READ_ONLY: '1' });
    const sub = await repo.run(['exp', 'run', '-S', 'train.lr=0.4', '--name', 'pr', '--distributed', '--no-wait']);
    expect(sub.code, sub.stderr).toBe(0);
    await until('the experiment to finish', async () => (await show(repo))[0]!.status === 'success');
    expect((await show(repo))[0]!.metrics.score).toBeGreaterThan(0);
    expect(w.output()).toContain('✓ pr: done');
    expect((await w.proc).exitCode).toBe(0); // --once: one job, then exit
    // The submitter pushed the bundle and the commit's outputs; the worker added nothing: no run-cache entry, no log.
    expect(filesUnder(path.join(remote, 'runs'))).toEqual([]);
    const rec = JSON.parse(repo.read('.lockstep/exps/pr.json'));
    expect(rec.distributed.log).toMatch(/^[0-9a-f]{16}$/);
    expect(fs.existsSync(objectPath(remote, rec.distributed.log))).toBe(false);
    expect(filesUnder(path.join(clone, '.lockstep', 'cache', 'runs'))).toEqual([]);
    expect(filesUnder(path.join(clone, '.lockstep', 'cache', 'files')).length).toBeGreaterThan(0);
  });

  it('results that cannot be pushed make the job try again with backoff; it succeeds once the remote recovers', async (ctx) => {
    const { setup, worker } = scope(ctx);
    const { repo, marks, remote } = setup();
    commit(repo, 'pipeline');
    fs.writeFileSync(path.join(marks, 'block'), '');
    const w = worker(cloneOf(repo), ['--idle-exit', '2']);
    const sub = repo.spawn(['exp', 'run', '-S', 'train.lr=0.9', '--name', 'flaky', '--distributed']);
    await until('train to start', () => fs.readdirSync(marks).some((f) => f.startsWith('train-started-')));
    // The remote's run-cache folder turns into a file: every entry upload fails until it is put back.
    const runs = path.join(remote, 'runs');
    fs.renameSync(runs, `${runs}.away`);
    fs.writeFileSync(runs, 'in the way');
    fs.rmSync(path.join(marks, 'block'));
    await until('the first attempt to fail', () => w.output().includes('flaky: results not pushed'));
    fs.rmSync(runs);
    fs.renameSync(`${runs}.away`, runs);
    const r = await sub;
    expect(r.exitCode, `${r.stdout}\n${r.stderr}\n${w.output()}`).toBe(0);
    expect(w.output()).toMatch(/warning: flaky: results not pushed to 'origin': .*; it will be tried again/);
    expect(w.output()).toMatch(/▶ flaky \(\w+\): running: train.lr=0.9 \(attempt 2\)/);
    const shown = await show(repo);
    expect(shown).toHaveLength(1);
    expect(shown[0]!.status).toBe('success');
    expect(filesUnder(runs).length).toBeGreaterThanOrEqual(2);
    expect((await w.proc).exitCode).toBe(0);
    expect(w.output()).toContain('idle for 2 s: exiting');
  });

  it('Redis unreachable: one clear line, exit 1, nothing recorded', async (ctx) => {
    const { setup } = scope(ctx);
    const { repo } = setup({ url: `redis://127.0.0.1:${await freePort()}` });
    commit(repo, 'pipeline');
    for (const args of [['exp', 'run', '-S', 'train.lr=0.5', '--distributed'], ['queue', 'status'], ['worker']]) {
      const r = await repo.run(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr.trim()).toMatch(/^error: scheduler redis:\/\/127\.0\.0\.1:\d+ cannot be reached: ECONNREFUSED; nothing was changed$/);
    }
    expect(filesUnder(repo.path('.lockstep/exps'))).toEqual([]);
  });

  it('refuses what it cannot run: uncommitted changes, no scheduler, --queue with --distributed', async (ctx) => {
    const { setup } = scope(ctx);
    const { repo } = setup();
    commit(repo, 'pipeline');
    repo.write({ 'params.yaml': 'train:\n  lr: 0.4\nsplit:\n  seed: 1\n' });
    const dirty = await repo.run(['exp', 'run', '-S', 'train.lr=0.5', '--distributed']);
    expect(dirty.code).toBe(2);
    expect(dirty.stderr.trim()).toBe('error: uncommitted changes (params.yaml): workers run the commit, so they would not see them; commit them first');
    const both = await repo.run(['exp', 'run', '-S', 'train.lr=0.5', '--distributed', '--queue']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('choose one');
    repo.write({ '.lockstep/config': 'remotes:\n  origin:\n    url: /tmp\n' });
    const none = await repo.run(['queue', 'status']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('error: no scheduler is configured');
    const bad = await repo.run(['worker', '-j', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--jobs must be a whole number of at least 1');
  });
});

describe('trust', () => {
  it('stage processes never see LOCKSTEP_RUN_CACHE_KEY; entries are still signed with it', async (ctx) => {
    const { later } = scope(ctx);
    const repo = new TempRepo({
      'pipeline.yaml': `stages:
  shell:
    cmd: node -e "require('fs').writeFileSync('shell.txt', String(process.env.LOCKSTEP_RUN_CACHE_KEY))"
    outs: [shell.txt]
  mod:
    module: m.ts
    outs: [mod.txt]
`,
      'm.ts': `import fs from 'node:fs';\nexport default function (ctx: { resolve(p: string): string }) { fs.writeFileSync(ctx.resolve('mod.txt'), String(process.env.LOCKSTEP_RUN_CACHE_KEY)); }\n`,
    });
    later(() => repo.cleanup());
    const r = await repo.run(['repro'], { env: { LOCKSTEP_RUN_CACHE_KEY: 'secret-key' } });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(repo.read('shell.txt')).toBe('undefined');
    expect(repo.read('mod.txt')).toBe('undefined');
    const entries = filesUnder(repo.path('.lockstep/cache/runs'));
    expect(entries).toHaveLength(2);
    for (const e of entries) expect(JSON.parse(fs.readFileSync(e, 'utf8')).signature).toMatch(/^hmac-sha256:/);
  });
});
