/**
 * The randomized crash sweep: kill -9 at random moments of `repro -j 2`,
 * `push`, `pull` (folder remote), `exp run --run-all -j 2` and `checkout` on a
 * small synthetic pipeline, and after every kill check what must hold:
 *
 * - pipeline.lock parses;
 * - every object in the cache (and on the remote) has the content its name says;
 * - the next command completes, and then `repro` leaves outputs byte-identical
 *   to a clean run (experiments: every run of the same params records the same
 *   output hashes);
 * - no experiment stays "running" once the next `exp` command ran, and no
 *   temporary copy of the repository is left behind.
 *
 * Other temporary litter (`*.lockstep-tmp-*` in the workspace, `.tmp-*` on the
 * remote, `.lockstep/cache/tmp/*`) is counted and reported, not failed on: its
 * cleanup is another change's. Used by tests/reliability/crash.test.ts (a fixed
 * seed, a dozen kills) and by `npm run bench -- crash` (LOCKSTEP_CRASH_SEED,
 * LOCKSTEP_CRASH_KILLS). Deterministic given the seed, except for where in the
 * command each kill lands, which depends on the machine's speed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Lockfile } from '../runner/lockfile.js';
import { hashFile } from '../runner/hash/xxhash.js';
import { parseManifest } from '../runner/cache/manifest.js';

/** This file runs from dist/bench (the bench) and from bench/ (under vitest). */
const HERE = path.dirname(fileURLToPath(import.meta.url));
const LOCKSTEP = path.join(path.basename(path.dirname(HERE)) === 'dist' ? path.dirname(path.dirname(HERE)) : path.dirname(HERE), 'bin', 'lockstep.js');

type CrashCommand = 'repro' | 'push' | 'pull' | 'exp' | 'checkout';
const COMMANDS: readonly CrashCommand[] = ['repro', 'push', 'pull', 'exp', 'checkout'];

interface CrashFailure {
  readonly kill: number;
  readonly command: CrashCommand;
  readonly delayMs: number;
  readonly problem: string;
}

export interface CrashReport {
  readonly seed: number;
  readonly kills: number;
  /** Kills that landed while the command was still running (the others found it finished). */
  readonly landed: number;
  readonly seconds: number;
  readonly failures: CrashFailure[];
  /** Temporary files left that another change is to clean up: where → how many times seen. */
  readonly litter: Record<string, number>;
}

/** mulberry32: small, fast and good enough to pick commands and moments reproducibly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// A pipeline with a fan-out, a directory output and a join, so `-j 2` has parallel work and
// the cache holds manifests as well as files. Each stage writes several files, slowly enough
// for kills to land inside it.
const STAGE = `const fs = require('fs');
const path = require('path');
const [mode, v] = process.argv.slice(2);
const rnd = (s) => () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
const nap = () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 4);
if (mode === 'gen') {
  fs.mkdirSync('data/raw', { recursive: true });
  const r = rnd(Number(v) * 7919 + 1);
  for (let i = 0; i < 16; i++) {
    let s = '';
    for (let j = 0; j < 200; j++) s += Math.floor(r() * 1e6) + '\\n';
    fs.writeFileSync('data/raw/part-' + String(i).padStart(2, '0') + '.txt', s);
    nap();
  }
} else if (mode === 'sum') {
  const files = fs.readdirSync('data/raw').sort();
  const lines = files.map((f) => f + ' ' + fs.readFileSync('data/raw/' + f, 'utf8').trim().split('\\n').reduce((a, b) => a + Number(b), 0));
  fs.mkdirSync('out', { recursive: true });
  fs.writeFileSync('out/sum.txt', lines.join('\\n') + '\\n');
} else if (mode === 'shard') {
  fs.mkdirSync('out/shards', { recursive: true });
  for (const f of fs.readdirSync('data/raw').sort()) {
    const nums = fs.readFileSync('data/raw/' + f, 'utf8').trim().split('\\n').map(Number).sort((a, b) => a - b);
    fs.writeFileSync('out/shards/' + f, nums.join('\\n') + '\\n');
    nap();
  }
} else if (mode === 'join') {
  const sum = fs.readFileSync('out/sum.txt', 'utf8');
  const shards = fs.readdirSync('out/shards').sort().map((f) => f + ':' + fs.readFileSync('out/shards/' + f, 'utf8').split('\\n')[0]);
  fs.writeFileSync('out/final.txt', sum + shards.join('\\n') + '\\n');
  fs.writeFileSync('metrics.json', JSON.stringify({ lines: sum.split('\\n').length, v: Number(v) }));
}
`;

const PIPELINE = `stages:
  gen:
    cmd: node stage.js gen \${p.v}
    deps: [stage.js]
    params: [p.v]
    outs: [data/raw]
  sum:
    cmd: node stage.js sum
    deps: [stage.js, data/raw]
    outs: [out/sum.txt]
  shard:
    cmd: node stage.js shard
    deps: [stage.js, data/raw]
    outs: [out/shards]
  join:
    cmd: node stage.js join \${p.v}
    deps: [stage.js, out/sum.txt, out/shards]
    params: [p.v]
    outs: [out/final.txt]
    metrics:
      - metrics.json: {cache: false}
`;

const OUTPUTS = ['data/raw', 'out', 'metrics.json'];

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

class Sweep {
  readonly work: string;
  readonly repo: string;
  readonly remote: string;
  readonly tmp: string;
  readonly env: NodeJS.ProcessEnv;
  /** How long each command takes when nothing kills it, to spread kills over its whole run. */
  readonly durations = new Map<CrashCommand, number>();
  reference: Map<string, string> = new Map();
  /** Output hashes each experiment's params value produced first; every later run must agree. */
  readonly expOutputs = new Map<string, string>();
  readonly litter: Record<string, number> = {};

  constructor() {
    this.work = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-crash-'));
    this.repo = path.join(this.work, 'repo');
    this.remote = path.join(this.work, 'remote');
    // Temporary copies of experiments go here, so litter is ours to see and nobody else's.
    this.tmp = path.join(this.work, 'tmp');
    fs.mkdirSync(this.tmp);
    this.env = { ...process.env, TMPDIR: this.tmp, NO_COLOR: '1' };
    delete this.env.LOCKSTEP_CACHE_DIR;
  }

  writeRepo(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'pipeline.yaml'), PIPELINE);
    fs.writeFileSync(path.join(dir, 'params.yaml'), 'p:\n  v: 3\n');
    fs.writeFileSync(path.join(dir, 'stage.js'), STAGE);
  }

  start(args: string[]): { pid: number; done: Promise<Run> } {
    const child = spawn(process.execPath, [LOCKSTEP, ...args], { cwd: this.repo, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const done = new Promise<Run>((resolve) => {
      child.once('error', (e) => resolve({ code: 127, signal: null, stdout, stderr: String(e) }));
      child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
    return { pid: child.pid!, done };
  }

  async run(args: string[], cwd = this.repo): Promise<Run> {
    const child = spawn(process.execPath, [LOCKSTEP, ...args], { cwd, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    return new Promise<Run>((resolve) => {
      child.once('error', (e) => resolve({ code: 127, signal: null, stdout, stderr: String(e) }));
      child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
  }

  async must(args: string[], cwd = this.repo): Promise<Run> {
    const r = await this.run(args, cwd);
    if (r.code !== 0) throw new Problem(`'lockstep ${args.join(' ')}' exited ${r.code}: ${lastLines(r.stderr || r.stdout)}`);
    return r;
  }

  /** A fresh repository and remote (again after a failure, so one failure does not cascade). */
  async setup(): Promise<void> {
    for (const d of [this.repo, this.remote]) fs.rmSync(d, { recursive: true, force: true });
    this.expOutputs.clear();
    this.writeRepo(this.repo);
    fs.mkdirSync(this.remote);
    await this.must(['remote', 'add', 'origin', this.remote, '--default']);
    const repro = await this.timed(['repro', '-j', '2']);
    // The first run in a fresh repository is the clean run everything is compared with.
    if (!this.reference.size) this.reference = snapshot(this.repo);
    const push = await this.timed(['push']);
    // First guesses; each command's unkilled rerun after a kill measures it properly.
    const guess: Record<CrashCommand, number> = { repro, push, checkout: push, pull: 2 * push, exp: 1.5 * repro };
    for (const c of COMMANDS) if (!this.durations.has(c)) this.durations.set(c, guess[c]);
  }

  async timed(args: string[]): Promise<number> {
    const t0 = performance.now();
    await this.must(args);
    return performance.now() - t0;
  }

  /** Make sure the command has real work to do when it is killed. */
  async prepare(cmd: CrashCommand, rnd: () => number = Math.random): Promise<string[]> {
    const rm = (rel: string) => fs.rmSync(path.join(this.repo, rel), { recursive: true, force: true });
    switch (cmd) {
      case 'repro':
        // Half the time every stage runs; otherwise outputs are gone and come back from the cache.
        if (rnd() < 0.5) return ['repro', '-j', '2', '-f'];
        for (const o of OUTPUTS) rm(o);
        return ['repro', '-j', '2'];
      case 'push':
        fs.rmSync(this.remote, { recursive: true, force: true });
        fs.mkdirSync(this.remote);
        return ['push'];
      case 'pull':
        await this.must(['push']); // a complete remote to pull from
        rm('.lockstep/cache');
        for (const o of OUTPUTS) rm(o);
        return ['pull'];
      case 'checkout':
        for (const o of OUTPUTS) rm(o);
        return ['checkout'];
      case 'exp': {
        const a = 1 + Math.floor(rnd() * 3);
        await this.must(['exp', 'run', '-S', `p.v=${a},${a + 1}`, '--queue']);
        return ['exp', 'run', '--run-all', '-j', '2'];
      }
    }
  }

  /** What a command must be run as, after a kill, to finish the job. */
  finishing(cmd: CrashCommand): string[] {
    return cmd === 'exp' ? ['exp', 'run', '--run-all', '-j', '2'] : cmd === 'repro' ? ['repro', '-j', '2'] : [cmd];
  }

  /** Every successful experiment's output hashes must be what the first one with its params recorded. */
  async recordExperiments(): Promise<void> {
    for (const rec of readExperiments(this.repo)) {
      if (rec.status === 'running') throw new Problem(`experiment ${rec.name} is still 'running' after the next exp command`);
      if (rec.status !== 'success') continue;
      const v = JSON.stringify(rec.overrides);
      const outs = JSON.stringify(Object.entries(rec.lock ?? {}).map(([s, e]) => [s, e.outs.map((o) => `${o.path}=${o.hash}`)]));
      const first = this.expOutputs.get(v);
      if (first === undefined) this.expOutputs.set(v, outs);
      else if (first !== outs) throw new Problem(`experiment ${rec.name} (${v}) recorded outputs ${outs}, an earlier run of the same params ${first}`);
    }
  }

  noteLitter(): void {
    const count = (where: string, n: number) => {
      if (n) this.litter[where] = (this.litter[where] ?? 0) + n;
    };
    count('workspace *.lockstep-tmp-*', walk(this.repo).filter((f) => f.includes('.lockstep-tmp-')).length);
    count('remote .tmp-*', walk(this.remote).filter((f) => path.basename(f).startsWith('.tmp-')).length);
    const cacheTmp = path.join(this.repo, '.lockstep', 'cache', 'tmp');
    count('.lockstep/cache/tmp/*', fs.existsSync(cacheTmp) ? fs.readdirSync(cacheTmp).length : 0);
  }

  cleanup(): void {
    fs.rmSync(this.work, { recursive: true, force: true });
  }
}

class Problem extends Error {}

function lastLines(s: string): string {
  return s.trim().split('\n').slice(-3).join(' | ');
}

/** Every file under `dir`, relative, following nothing. */
function walk(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((e) => !e.isDirectory())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const o of OUTPUTS) {
    const abs = path.join(root, o);
    if (!fs.existsSync(abs)) continue;
    const files = fs.statSync(abs).isDirectory() ? walk(abs).map((f) => path.join(o, f)) : [o];
    // Staging leftovers of a killed checkout are litter (counted elsewhere), not outputs.
    for (const f of files) if (!f.includes('.lockstep-tmp-')) out.set(f, fs.readFileSync(path.join(root, f), 'base64'));
  }
  return out;
}

interface ExpRec {
  name: string;
  status: string;
  overrides: unknown;
  lock?: Record<string, { outs: { path: string; hash: string }[] }>;
}

function readExperiments(repo: string): ExpRec[] {
  const dir = path.join(repo, '.lockstep', 'exps');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as ExpRec);
}

/** Every object under a cache-shaped folder (local cache or folder remote) must match its name. */
async function verifyObjects(base: string, where: string): Promise<void> {
  const root = path.join(base, 'files', 'xxh64');
  if (!fs.existsSync(root)) return;
  for (const fan of fs.readdirSync(root)) {
    for (const name of fs.readdirSync(path.join(root, fan))) {
      if (name.startsWith('.')) continue; // a remote's temp upload: litter, not an object
      const hash = fan + name;
      const file = path.join(root, fan, name);
      if (hash.endsWith('.dir')) {
        const r = await parseManifest(fs.readFileSync(file, 'utf8'), hash);
        if (!r.ok) throw new Problem(`${where} manifest ${hash}: ${r.problem}`);
      } else {
        const got = (await hashFile(file)).hash;
        if (got !== hash) throw new Problem(`${where} object ${hash} has content hash ${got}`);
      }
    }
  }
}

/** Processes descended from `pid` (Linux /proc), found by parent links. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(p)]);
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    for (const c of children.get(queue.shift()!) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/**
 * kill -9 of a command and everything it started, as a power cut or the OOM
 * killer of a container would: stopped first, so nothing new starts while we
 * collect them. (`exp run` is killed alone instead: its orphans are what the
 * next exp command must clean up.)
 */
function killTree(pid: number): void {
  const seen = new Set<number>();
  for (let round = 0; round < 10; round++) {
    const now = [pid, ...descendants(pid)].filter((p) => !seen.has(p));
    if (!now.length) break;
    for (const p of now) {
      seen.add(p);
      try {
        process.kill(p, 'SIGSTOP');
      } catch {
        // already gone
      }
    }
  }
  for (const p of seen) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export async function crashSweep(opts: { seed: number; kills: number; log?: (line: string) => void }): Promise<CrashReport> {
  const t0 = performance.now();
  const rnd = prng(opts.seed);
  const sweep = new Sweep();
  const failures: CrashFailure[] = [];
  let landed = 0;
  try {
    await sweep.setup();
    opts.log?.(`setup: ${((performance.now() - t0) / 1000).toFixed(1)} s; ${[...sweep.durations].map(([c, ms]) => `${c} ${Math.round(ms)} ms`).join(', ')}`);
    for (let k = 1; k <= opts.kills; k++) {
      const command = COMMANDS[Math.floor(rnd() * COMMANDS.length)]!;
      const delayMs = Math.round(rnd() * 1.1 * sweep.durations.get(command)!);
      try {
        const args = await sweep.prepare(command, rnd);
        const proc = sweep.start(args);
        await new Promise((r) => setTimeout(r, delayMs));
        if (command === 'exp') {
          try {
            process.kill(proc.pid, 'SIGKILL');
          } catch {
            // it had finished
          }
        } else killTree(proc.pid);
        const r = await proc.done;
        if (r.signal === 'SIGKILL') landed++;
        else if (r.code !== 0) throw new Problem(`'lockstep ${args.join(' ')}' failed before the kill (${r.code}): ${lastLines(r.stderr)}`);
        await check(sweep, command);
        opts.log?.(`kill ${k}: ${command} after ${delayMs} ms${r.signal ? '' : ' (had finished)'}: ok (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      } catch (e) {
        if (!(e instanceof Problem)) throw e;
        failures.push({ kill: k, command, delayMs, problem: e.message });
        opts.log?.(`kill ${k}: ${command} after ${delayMs} ms: FAILED: ${e.message}`);
        // Start the next kill from a sound state: a fresh repository.
        await sweep.setup();
      }
    }
  } finally {
    sweep.cleanup();
  }
  return { seed: opts.seed, kills: opts.kills, landed, seconds: (performance.now() - t0) / 1000, failures, litter: sweep.litter };
}

async function check(sweep: Sweep, command: CrashCommand): Promise<void> {
  const lock = path.join(sweep.repo, 'pipeline.lock');
  if (fs.existsSync(lock)) {
    try {
      Lockfile.parseText(fs.readFileSync(lock, 'utf8'));
    } catch (e) {
      throw new Problem(`pipeline.lock does not parse: ${(e as Error).message}`);
    }
  }
  await verifyObjects(path.join(sweep.repo, '.lockstep', 'cache'), 'cache');
  await verifyObjects(sweep.remote, 'remote');
  if (command === 'exp') {
    // The next exp command must put back what the dead runner left running, and its copies must go.
    const show = await sweep.must(['exp', 'show', '--json']);
    const stuck = (JSON.parse(show.stdout) as { experiments: { name: string; status: string }[] }).experiments.filter((e) => e.status === 'running');
    if (stuck.length) throw new Problem(`after the next exp command, still 'running': ${stuck.map((e) => e.name).join(', ')}`);
    const copies = fs.readdirSync(sweep.tmp).filter((f) => f.startsWith('lockstep-exp-'));
    if (copies.length) throw new Problem(`temporary copies left after the next exp command: ${copies.join(', ')}`);
  }
  // The rerun, timed: the next kill of this command is spread over how long it really takes.
  sweep.durations.set(command, await sweep.timed(sweep.finishing(command)));
  // A pull into an empty cache brings run-cache entries without their objects; a push right after must still succeed (issue 11 follow-up).
  if (command === 'pull') await sweep.must(['push']);
  sweep.noteLitter();
  if (command === 'exp') {
    // Experiments never touch the workspace; theirs are compared by recordExperiments.
    await sweep.recordExperiments();
    const left = fs.readdirSync(sweep.tmp);
    if (left.length) throw new Problem(`left in TMPDIR after the rerun: ${left.join(', ')}`);
    return;
  }
  const r = await sweep.must(['repro', '-j', '2']);
  const now = snapshot(sweep.repo);
  for (const [f, bytes] of sweep.reference) {
    if (now.get(f) !== bytes)
      throw new Problem(`${f} ${now.has(f) ? 'differs from' : 'is missing, unlike'} a clean run after the rerun (${lastLines(r.stdout)})`);
  }
  for (const f of now.keys()) if (!sweep.reference.has(f)) throw new Problem(`${f} is not in a clean run`);
  await sweep.recordExperiments();
  const copies = fs.readdirSync(sweep.tmp);
  if (copies.length) throw new Problem(`left in TMPDIR after the rerun: ${copies.join(', ')}`);
}

/** `npm run bench -- crash`: a longer sweep; prints kills/s and every failure with how to replay it. */
export async function benchCrash(): Promise<import('./util.js').Row[]> {
  const seed = Number(process.env.LOCKSTEP_CRASH_SEED ?? Date.now() % 1_000_000);
  const kills = Number(process.env.LOCKSTEP_CRASH_KILLS ?? 100);
  console.log(`crash sweep: seed ${seed}, ${kills} kills (replay: LOCKSTEP_CRASH_SEED=${seed} LOCKSTEP_CRASH_KILLS=${kills} npm run bench -- crash)`);
  const r = await crashSweep({ seed, kills, log: process.env.LOCKSTEP_CRASH_VERBOSE ? (l) => console.log(l) : undefined });
  for (const f of r.failures) console.log(`FAILED kill ${f.kill} (${f.command} after ${f.delayMs} ms, seed ${seed}): ${f.problem}`);
  for (const [where, n] of Object.entries(r.litter)) console.log(`litter (not this sweep's to fail on): ${where} seen ${n}×`);
  return [
    { name: `crash sweep: kills (seed ${seed})`, value: r.kills, unit: '' },
    { name: 'crash sweep: kills that landed mid-command', value: r.landed, unit: '' },
    { name: 'crash sweep: kills per second', value: r.kills / r.seconds, unit: '/s' },
    { name: 'crash sweep: failures', value: r.failures.length, unit: '', target: '0', ok: r.failures.length === 0 },
  ];
}
