import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { execa, type ResultPromise } from 'execa';
import { LOCKSTEP, TempRepo } from '../helpers.js';

/** A free TCP port on 127.0.0.1: the same helper the other server tests use. */
export { freePort } from '../../bench/servers.js';

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.write('PING\r\n');
      c.once('data', (d) => {
        c.destroy();
        resolve(d.toString().startsWith('+PONG'));
      });
    });
    c.once('error', () => resolve(false));
  });
}

/** A real redis-server on a loopback port, without persistence (a restart loses everything, the hardest case). */
export class RedisServer {
  private proc: ChildProcess | undefined;
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      if (await answers(this.port)) return;
      await sleep(50);
    }
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p || p.exitCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * A small synthetic pipeline: prep (depends on split.seed) → train (on the
 * prepared data and train.lr) with a metrics file. Side effects in `marks/`
 * (outside the outputs) count how often each stage really ran; train waits
 * while `marks/block` exists and fails while `marks/broken` exists.
 */
export function pipelineRepo(marks: string, scheduler: Record<string, unknown>, remote: string): TempRepo {
  const m = JSON.stringify(marks);
  const repo = new TempRepo({
    'pipeline.yaml': `stages:
  prep:
    cmd: >-
      node -e "const fs=require('fs'); fs.appendFileSync(${esc(m)} + '/prep.log', 'x');
      fs.writeFileSync('data.txt', Array.from({length: 50}, (_, i) => (i * \${split.seed}) % 17).join('\\\\n'))"
    params: [split.seed]
    outs: [data.txt]
  train:
    cmd: >-
      node -e "const fs=require('fs'), M=${esc(m)}; fs.writeFileSync(M + '/train-started-' + process.pid, '');
      while (fs.existsSync(M + '/block')) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      if (fs.existsSync(M + '/broken')) { console.error('train is broken: lr ' + \${train.lr}); process.exit(3); }
      const xs = fs.readFileSync('data.txt', 'utf8').split('\\\\n').map(Number); const lr = \${train.lr};
      const score = xs.reduce((a, x) => a + x * lr, 0) / xs.length; console.log('score ' + score);
      fs.mkdirSync('model', {recursive: true}); fs.writeFileSync('model/weights.txt', xs.map((x) => x * lr).join(','));
      fs.writeFileSync('metrics.json', JSON.stringify({score, loss: 1 / (1 + score)}))"
    deps: [data.txt]
    params: [train.lr]
    outs: [model]
    metrics:
      - metrics.json: {cache: false}
`,
    'params.yaml': 'train:\n  lr: 0.1\nsplit:\n  seed: 1\n',
    // Outputs live in the cache and on the remote, not in git, as in a real project.
    '.gitignore': 'data.txt\nmodel/\n',
    '.lockstep/config': `remotes:\n  origin:\n    url: ${remote}\nscheduler: ${JSON.stringify(scheduler)}\n`,
  });
  execSync('git init -q && git config user.email t@t && git config user.name t', { cwd: repo.dir });
  return repo;
}

function esc(s: string): string {
  return s.replace(/"/g, '\\"');
}

export function commit(repo: TempRepo, msg: string): void {
  execSync(`git add -A && git commit -qm "${msg}"`, { cwd: repo.dir });
}

/** A worker machine: its own clone of the repository (at whatever commit it was cloned). */
export function cloneOf(repo: TempRepo): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-worker-'));
  execSync(`git clone -q "${repo.dir}" "${dir}"`);
  // Installed packages would be here in a real clone; the synthetic pipeline needs none.
  return dir;
}

export interface WorkerProc {
  readonly dir: string;
  readonly proc: ResultPromise;
  output(): string;
}

export function startWorker(dir: string, args: string[] = [], env: Record<string, string> = {}): WorkerProc {
  const proc = execa(process.execPath, [LOCKSTEP, 'worker', ...args], {
    cwd: dir,
    env: { NO_COLOR: '1', ...env },
    reject: false,
    stdin: 'ignore',
    buffer: false,
    all: true,
  });
  let out = '';
  proc.all?.on('data', (d: Buffer) => void (out += d.toString()));
  return { dir, proc, output: () => out };
}

export async function stopWorker(w: WorkerProc): Promise<void> {
  if (w.proc.exitCode !== null && w.proc.exitCode !== undefined) return;
  w.proc.kill('SIGTERM');
  const timer = setTimeout(() => w.proc.kill('SIGKILL'), 5000);
  await w.proc;
  clearTimeout(timer);
}

export function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
