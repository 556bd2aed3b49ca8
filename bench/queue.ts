import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, execSync, type ChildProcess } from 'node:child_process';
import { LOCKSTEP, tempDir, writeFiles, type Row } from './util.js';

/** The pipeline a queue benchmark runs: its repository, a grid of 12 per configuration, and the command that runs every stage. */
interface Subject {
  readonly label: string;
  setUp(repo: string, remote: string, url: string): void;
  grid(k: number): string[];
  readonly all: string[];
}

/**
 * Distributed experiments on a synthetic pipeline: a prep stage and a
 * CPU-bound train stage of about half a second, so the queue's own costs show.
 */
export function benchQueue(): Promise<Row[]> {
  return benchQueueOn({
    label: 'synthetic',
    setUp: syntheticRepo,
    grid: (k) => ['-S', `split.seed=${k * 10 + 1},${k * 10 + 2},${k * 10 + 3}`, '-S', 'train.lr=0.1,0.2,0.3,0.4'],
    all: ['repro', '-f'],
  });
}

/**
 * The same on the lead pipeline and the real data: 12 experiments varying
 * the train stage's seed and folds (ingest, clean and split are restored).
 */
export async function benchQueueLead(): Promise<Row[]> {
  const { copyRepo, setSource, SHARED_RAW } = await import('./pipeline.js');
  if (!fs.existsSync(SHARED_RAW)) return [{ name: 'queue on the lead pipeline: skipped (../shared/data/raw_data.csv absent)', value: 0, unit: '' }];
  return benchQueueOn({
    label: 'lead pipeline',
    setUp: (repo, remote, url) => {
      fs.mkdirSync(remote, { recursive: true });
      fs.renameSync(copyRepo(), repo);
      setSource(repo);
      writeFiles(repo, { '.lockstep/config': `remotes:\n  origin:\n    url: ${remote}\nscheduler:\n  url: ${url}\n` });
      execSync('git init -q && git config user.email b@b && git config user.name b', { cwd: repo });
      run(repo, ['repro']);
      execSync('git add -A && git commit -qm bench', { cwd: repo });
    },
    grid: (k) => ['-S', `train.seed=${k * 10 + 1},${k * 10 + 2},${k * 10 + 3},${k * 10 + 4},${k * 10 + 5},${k * 10 + 6}`, '-S', 'train.cv=3,4'],
    all: ['repro', '-f', 'train'],
  });
}

/**
 * A grid of 12 on 1, 2 and 3 local `lockstep worker` processes against
 * `exp run --run-all -j 2`. Each configuration uses its own seeds, so no grid
 * is served from another's run-cache.
 */
async function benchQueueOn(subject: Subject): Promise<Row[]> {
  const port = await freePort();
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const root = tempDir('queue');
  const workers: ChildProcess[] = [];
  try {
    await waitForPort(port);
    const repo = path.join(root, 'repo');
    subject.setUp(repo, path.join(root, 'remote'), `redis://127.0.0.1:${port}`);
    const grid = subject.grid;
    // Scaling needs free cores: say how busy the machine was.
    const rows: Row[] = [{ name: 'load average when the section started (2 cores = 2.0 busy)', value: os.loadavg()[0]!, unit: '' }];

    // The stages alone, no queue and no temporary workspace: what a job costs at the least.
    time(repo, subject.all); // warm-up: stat cache, page cache
    const single = median([1, 2, 3].map(() => time(repo, subject.all)));
    execSync('git checkout -q -- .', { cwd: repo });
    rows.push({ name: `${subject.label}: the stages an experiment runs, alone (${subject.all.join(' ')})`, value: single, unit: 'ms' });

    run(repo, ['exp', 'run', ...grid(0), '--queue']);
    const local = time(repo, ['exp', 'run', '--run-all', '-j', '2']);
    rows.push({ name: `${subject.label}: grid of 12, exp run --run-all -j 2 (one machine)`, value: local, unit: 'ms' });

    const { Queue } = await import('bullmq');
    for (const n of [1, 2, 3]) {
      const queueName = `bench-${n}`;
      for (let i = 0; i < n; i++) workers.push(startWorker(repo, root, queueName));
      await new Promise((r) => setTimeout(r, 1500)); // workers up and waiting
      const t0 = Date.now();
      run(repo, ['exp', 'run', ...grid(n), '--distributed'], { LOCKSTEP_SCHEDULER_QUEUE: queueName });
      const wall = Date.now() - t0;
      const q = new Queue(queueName, { connection: { url: `redis://127.0.0.1:${port}` }, prefix: 'lockstep' });
      const jobs = (await q.getJobs(['completed'], 0, -1)).filter(Boolean);
      await q.close();
      const firstStart = Math.min(...jobs.map((j) => j.processedOn!));
      const pickUp = median(jobs.map((j) => j.processedOn! - j.timestamp));
      const perJob = median(jobs.map((j) => j.finishedOn! - j.processedOn!));
      rows.push({
        name: `${subject.label}: grid of 12 on ${n} worker${n === 1 ? '' : 's'} (--distributed, wall)`,
        value: wall,
        unit: 'ms',
        note: `${(local / wall).toFixed(2)}× of --run-all -j 2`,
      });
      if (n === 1) {
        rows.push({ name: '  submit → first job started (bundle, push, 12 adds, pick-up)', value: firstStart - t0, unit: 'ms' });
        rows.push({ name: '  a queued job waiting for a free worker (median)', value: pickUp, unit: 'ms' });
        rows.push({ name: '  one job on a worker (median): workspace, repro, pushes', value: perJob, unit: 'ms' });
        rows.push({ name: '  overhead per job (job on a worker − the stages alone)', value: perJob - single, unit: 'ms' });
      }
      await Promise.all(workers.splice(0).map(stop));
    }
    return rows;
  } finally {
    await Promise.all(workers.map(stop));
    redis.kill('SIGKILL');
    fs.rmSync(root, { recursive: true, force: true });
  }
}

function syntheticRepo(repo: string, remote: string, url: string): void {
  fs.mkdirSync(remote, { recursive: true });
  writeFiles(repo, {
    'pipeline.yaml': `stages:
  prep:
    cmd: >-
      node -e "require('fs').writeFileSync('data.txt', Array.from({length: 2000}, (_, i) => (i * \${split.seed}) % 97).join('\\\\n'))"
    params: [split.seed]
    outs: [data.txt]
  train:
    cmd: >-
      node -e "const fs=require('fs'); const xs=fs.readFileSync('data.txt','utf8').split('\\\\n').map(Number);
      let w=0; for (let e=0; e<3000; e++) for (const x of xs) w += (x * \${train.lr} - w) * 1e-4;
      fs.writeFileSync('model.txt', String(w)); fs.writeFileSync('metrics.json', JSON.stringify({w}))"
    deps: [data.txt]
    params: [train.lr]
    outs: [model.txt]
    metrics:
      - metrics.json: {cache: false}
`,
    'params.yaml': 'train:\n  lr: 0.1\nsplit:\n  seed: 1\n',
    '.gitignore': 'data.txt\nmodel.txt\n',
    '.lockstep/config': `remotes:\n  origin:\n    url: ${remote}\nscheduler:\n  url: ${url}\n`,
  });
  execSync('git init -q && git config user.email b@b && git config user.name b', { cwd: repo });
  run(repo, ['repro']);
  execSync('git add -A && git commit -qm bench', { cwd: repo });
}

/** A worker in its own clone (a machine of its own, cold local cache). */
function startWorker(repo: string, root: string, queue: string): ChildProcess {
  const dir = fs.mkdtempSync(path.join(root, 'worker-'));
  execSync(`git clone -q "${repo}" "${dir}"`);
  // A worker machine has run `npm ci`: its clone has the packages stage modules import.
  if (fs.existsSync(path.join(repo, 'node_modules'))) fs.symlinkSync(fs.realpathSync(path.join(repo, 'node_modules')), path.join(dir, 'node_modules'));
  return spawn(process.execPath, [LOCKSTEP, 'worker', '--queue', queue], { cwd: dir, stdio: 'ignore' });
}

function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    c.once('exit', () => resolve());
    c.kill('SIGTERM');
  });
}

function run(cwd: string, args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(process.execPath, [LOCKSTEP, ...args], { cwd, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`lockstep ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function time(cwd: string, args: string[]): number {
  const t0 = performance.now();
  run(cwd, args);
  return performance.now() - t0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => (c.destroy(), resolve(true)));
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server did not start on port ${port}`);
}
