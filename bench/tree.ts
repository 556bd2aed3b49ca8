/**
 * The 10,000-file folder (issue 14): one stage whose dep is a folder of
 * 10,000 files (100 MiB, in 100 subfolders), and one whose output is such a
 * folder. Reports the no-op `repro`, `status` and a one-file-changed `repro`.
 *
 * With LOCKSTEP_BENCH_BEFORE=/path/to/bin/lockstep.js the same figures are measured
 * for that build too, on an identical workspace, interleaved run by run, so a
 * before/after pair shares the machine's load.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BEFORE, LOCKSTEP, median, tempDir, type Row } from './util.js';

const RUNS = Number(process.env.LOCKSTEP_TREE_RUNS ?? 9);
const FILES = 10_000;
const FOLDERS = 100;
/** 10,000 × 10,486 bytes ≈ 100 MiB. */
const FILE_SIZE = 10_486;
const GOAL_MS = 250;

/** Deterministic bytes: every file distinct, the same in every generated copy. */
function noise(): Buffer {
  const buf = Buffer.allocUnsafe(1 << 20);
  let x = 0x9e3779b9;
  for (let i = 0; i < buf.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeUInt32LE(x >>> 0, i);
  }
  return buf;
}

/** The folder `rel` of `dir`: FILES files of FILE_SIZE bytes spread over FOLDERS subfolders. */
function generateTree(dir: string, rel: string): void {
  const src = noise();
  for (let d = 0; d < FOLDERS; d++) fs.mkdirSync(path.join(dir, rel, `d${String(d).padStart(2, '0')}`), { recursive: true });
  for (let i = 0; i < FILES; i++) {
    const off = (i * 7919) % (src.length - FILE_SIZE);
    const data = Buffer.from(src.subarray(off, off + FILE_SIZE));
    data.write(`file ${i}\n`, 0);
    fs.writeFileSync(treeFile(dir, rel, i), data);
  }
}

function treeFile(dir: string, rel: string, i: number): string {
  return path.join(dir, rel, `d${String(i % FOLDERS).padStart(2, '0')}`, `f${i}.bin`);
}

/** The dep workspace: `data/` in, a one-line count out. */
function depWorkspace(): string {
  const dir = tempDir('tree-dep');
  fs.writeFileSync(path.join(dir, 'pipeline.yaml'), 'stages:\n  count:\n    cmd: ls -R data | wc -l > count.txt\n    deps: [data]\n    outs: [count.txt]\n');
  generateTree(dir, 'data');
  return dir;
}

/** The output workspace: a stage that copies a 10,000-file folder out (the output is a `.dir`). */
function outWorkspace(): string {
  const dir = tempDir('tree-out');
  fs.writeFileSync(path.join(dir, 'pipeline.yaml'), 'stages:\n  copy:\n    cmd: rm -rf out && cp -r src out\n    deps: [src]\n    outs: [out]\n');
  generateTree(dir, 'src');
  return dir;
}

/**
 * Under load the wall time of a run says as much about the other processes as
 * about this one: where GNU time is installed, the run's own CPU time (user +
 * system) is measured too.
 */
const GNU_TIME = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
const TIME_FILE = GNU_TIME && path.join(os.tmpdir(), `lockstep-bench-time-${process.pid}.txt`);

function time(bin: string, cwd: string, args: string[]): { wall: number; cpu?: number } {
  const out = TIME_FILE;
  const argv = [process.execPath, bin, ...args];
  const t0 = performance.now();
  const r = out
    ? spawnSync(GNU_TIME!, ['-f', '%U %S', '-o', out, ...argv], { cwd, encoding: 'utf8' })
    : spawnSync(argv[0]!, argv.slice(1), { cwd, encoding: 'utf8' });
  const wall = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  if (!out) return { wall };
  const [user, sys] = fs.readFileSync(out, 'utf8').trim().split(/\s+/).slice(-2).map(Number);
  return { wall, cpu: (user! + sys!) * 1000 };
}

/** Run `args` with `bin` and check that it ran exactly `ran` stages (so a no-op is one, and a change is seen). */
function checkRan(bin: string, cwd: string, ran: number): void {
  const r = spawnSync(process.execPath, [bin, 'repro', '--json'], { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`repro failed in ${cwd}:\n${r.stdout}\n${r.stderr}`);
  const doc = JSON.parse(r.stdout) as { stages: { state: string }[] };
  const n = doc.stages.filter((s) => s.state !== 'skipped').length;
  if (n !== ran) throw new Error(`expected ${ran} stage(s) to run in ${cwd}, ${n} did:\n${r.stdout}`);
}

interface Build {
  readonly label: string;
  readonly bin: string;
  readonly dep: string;
  readonly out: string;
  readonly xs: Record<string, number[]>;
  readonly cpu: Record<string, number[]>;
}

/** One file of `data/` rewritten with new bytes of the same size (run `k`): the stage must rerun. */
function touchOne(dir: string, k: number): void {
  const f = treeFile(dir, 'data', 4242);
  const data = fs.readFileSync(f);
  data.write(`edit ${k} `.padEnd(16, '.'), 0);
  fs.writeFileSync(f, data);
}

export async function benchTree(): Promise<Row[]> {
  const builds: Build[] = [{ label: '', bin: LOCKSTEP, dep: '', out: '', xs: {}, cpu: {} }];
  const before = BEFORE;
  if (before) builds.unshift({ label: ' [before]', bin: before, dep: '', out: '', xs: {}, cpu: {} });
  // Every workspace made is removed however the run ends (a failing build included).
  const made: string[] = [];
  const workspace = (make: () => string) => {
    const d = make();
    made.push(d);
    return d;
  };
  const add = (b: Build, key: string, t: { wall: number; cpu?: number }) => {
    (b.xs[key] ??= []).push(t.wall);
    if (t.cpu !== undefined) (b.cpu[key] ??= []).push(t.cpu);
  };
  const ready: Build[] = [];
  try {
    for (const b of builds) {
      const w = { ...b, dep: workspace(depWorkspace), out: workspace(outWorkspace) };
      for (const d of [w.dep, w.out]) {
        time(w.bin, d, ['repro']); // cold: hashes everything, runs the stage
        time(w.bin, d, ['repro']); // settles the stat cache
        checkRan(w.bin, d, 0);
      }
      ready.push(w);
    }
    for (let i = 0; i < RUNS; i++) {
      for (const b of ready) {
        add(b, 'repro', time(b.bin, b.dep, ['repro']));
        add(b, 'status', time(b.bin, b.dep, ['status']));
        add(b, 'out', time(b.bin, b.out, ['repro']));
        touchOne(b.dep, i);
        add(b, 'changed', time(b.bin, b.dep, ['repro']));
      }
    }
    for (const b of ready) {
      checkRan(b.bin, b.dep, 0);
      touchOne(b.dep, RUNS);
      checkRan(b.bin, b.dep, 1);
    }
  } finally {
    for (const d of made) fs.rmSync(d, { recursive: true, force: true });
    if (TIME_FILE) fs.rmSync(TIME_FILE, { force: true });
  }
  const walk = bareWalkMs();
  const rows: Row[] = [];
  for (const b of ready) {
    const m = (k: string) => median(b.xs[k]!);
    const note = (k: string) => (b.cpu[k] ? `(CPU ${median(b.cpu[k]).toFixed(0)} ms)` : undefined);
    const goal = (k: string) => ({ target: `<= ${GOAL_MS} ms`, ok: m(k) <= GOAL_MS, note: note(k) });
    rows.push({ name: `no-op repro, dep = 10,000-file folder${b.label}`, value: m('repro'), unit: 'ms', ...goal('repro') });
    rows.push({ name: `no-op status, same${b.label}`, value: m('status'), unit: 'ms', ...goal('status') });
    rows.push({ name: `no-op repro, output = 10,000-file folder${b.label}`, value: m('out'), unit: 'ms', ...goal('out') });
    rows.push({ name: `one file changed, repro (stage reruns)${b.label}`, value: m('changed'), unit: 'ms', note: note('changed') });
  }
  rows.push({ name: '  (for scale: readdir + lstat of the folder, in process)', value: walk, unit: 'ms' });
  return rows;
}

/** The floor: what listing and lstat-ing every file costs, without starting node. */
function bareWalkMs(): number {
  const dir = tempDir('tree-walk');
  try {
    generateTree(dir, 'data');
    const once = () => {
      const t0 = performance.now();
      const go = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
          const p = `${d}/${e.name}`;
          if (e.isDirectory()) go(p);
          else fs.lstatSync(p);
        }
      };
      go(path.join(dir, 'data'));
      return performance.now() - t0;
    };
    once();
    return median(Array.from({ length: RUNS }, once));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
