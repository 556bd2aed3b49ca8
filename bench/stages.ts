/**
 * Per-stage cost of a cold run: generated pipelines of trivial shell stages,
 * each timed on a fresh copy so every run is cold (no lock, no cache, no stat
 * cache). With LOCKSTEP_BENCH_BEFORE=<path to another bin/lockstep.js> (for
 * example /work/before/bin/lockstep.js) both CLIs run, interleaved in
 * alternating order on identical copies, and a ratio row is added.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BEFORE, LOCKSTEP, median, tempDir, writeFiles, type Row } from './util.js';

/** One workspace to generate: its files and how to check a run produced exactly what it should. */
interface StageWorkload {
  readonly name: string;
  readonly files: Record<string, string>;
  readonly jobs: number;
  /** Output file → content it must have after a cold run. */
  readonly expected: Record<string, string>;
}

/**
 * `chains` chains of `length` stages: the first of each writes a line, each
 * later one reads its predecessor's output and writes one line more. Only
 * shell builtins (`read`, `echo`), so the stage itself costs one `sh`.
 */
function chains(count: number, length: number, jobs = 2): StageWorkload {
  let y = 'stages:\n';
  const expected: Record<string, string> = {};
  for (let c = 0; c < count; c++) {
    for (let i = 0; i < length; i++) {
      const out = `c${c}/s${i}.txt`;
      const dep = i === 0 ? undefined : `c${c}/s${i - 1}.txt`;
      const cmd = dep ? `read x < ${dep} && echo "$x.${i}" > ${out}` : `echo ${c} > ${out}`;
      y += `  c${c}s${i}:\n    cmd: ${JSON.stringify(cmd)}\n${dep ? `    deps: [${dep}]\n` : ''}    outs: [${out}]\n`;
      expected[out] = `${c}${Array.from({ length: i }, (_, k) => `.${k + 1}`).join('')}\n`;
    }
  }
  const files: Record<string, string> = { 'pipeline.yaml': y };
  for (let c = 0; c < count; c++) files[`c${c}/.keep`] = '';
  const name =
    count * length === 1 ? `1 stage (the fixed cost), cold, -j ${jobs}` : `${count * length} stages (${count} chains of ${length}), cold, -j ${jobs}`;
  return { name, files, jobs, expected };
}

/** `n` independent stages, each writing its own one-line file. */
function flat(n: number, jobs = 2): StageWorkload {
  let y = 'stages:\n';
  const expected: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    y += `  s${i}:\n    cmd: echo ${i} > o${i}.txt\n    outs: [o${i}.txt]\n`;
    expected[`o${i}.txt`] = `${i}\n`;
  }
  return { name: `${n.toLocaleString('en')} independent stages, cold, -j ${jobs}`, files: { 'pipeline.yaml': y }, jobs, expected };
}

/** `n` independent stages that each sleep `seconds` and then write a line. */
function sleepers(n: number, seconds = 1, jobs = n): StageWorkload {
  let y = 'stages:\n';
  const expected: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    y += `  s${i}:\n    cmd: sleep ${seconds} && echo ${i} > o${i}.txt\n    outs: [o${i}.txt]\n`;
    expected[`o${i}.txt`] = `${i}\n`;
  }
  return { name: `${n} × sleep ${seconds} stages, cold, -j ${jobs}`, files: { 'pipeline.yaml': y }, jobs, expected };
}

/**
 * Wall milliseconds of one cold `repro -j N` by `bin` in `dir` (a fresh copy of `w`); throws if any
 * output is wrong. The copy is left for the caller to remove.
 */
function timeCold(bin: string, w: StageWorkload, dir: string): number {
  writeFiles(dir, w.files);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [bin, 'repro', '-j', String(w.jobs)], { cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${bin} repro failed (${r.status}) on ${w.name}:\n${r.stderr.slice(-2000)}`);
  for (const [rel, want] of Object.entries(w.expected)) {
    const got = fs.readFileSync(path.join(dir, rel), 'utf8');
    if (got !== want) throw new Error(`${bin} on ${w.name}: ${rel} has ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  }
  return ms;
}

/**
 * Medians of `runs` cold runs per CLI, the CLIs interleaved (order alternating each round, so drift
 * hits both alike). The copies are removed only after the last run: on a filesystem without a journal
 * (ext4 here) creating files right after thousands were deleted costs several times more, which would
 * make each run pay for the previous one's cleanup.
 */
function compareCold(bins: readonly string[], w: StageWorkload, runs: number): number[] {
  const xs: number[][] = bins.map(() => []);
  const dirs: string[] = [];
  try {
    for (let k = 0; k < runs; k++) {
      const order = bins.map((_, i) => i);
      if (k % 2) order.reverse();
      for (const i of order) {
        dirs.push(tempDir('stages'));
        xs[i]!.push(timeCold(bins[i]!, w, dirs.at(-1)!));
      }
    }
  } finally {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
  return xs.map(median);
}

const STAGE_WORKLOADS: readonly { readonly w: () => StageWorkload; readonly stages: number; readonly target?: number }[] = [
  // The fixed cost (start-up, one stage): the others' per-stage figure is their time beyond it.
  { w: () => chains(1, 1), stages: 1 },
  { w: () => chains(20, 10), stages: 200, target: 1300 },
  { w: () => flat(1000), stages: 1000 },
  { w: () => flat(100), stages: 100 },
  { w: () => sleepers(8), stages: 8, target: 1100 },
];

export async function benchStages(): Promise<Row[]> {
  const against = BEFORE;
  const runs = Number(process.env.LOCKSTEP_BENCH_RUNS ?? 5);
  const bins = against ? [LOCKSTEP, against] : [LOCKSTEP];
  const rows: Row[] = [];
  let single: number[] | undefined;
  for (const { w, stages, target } of STAGE_WORKLOADS) {
    const work = w();
    const times = compareCold(bins, work, runs);
    const [now, other] = times;
    single ??= times;
    const beyond = (t: number, i: number) => `${((t - single![i]!) / (stages - 1)).toFixed(1)} ms/stage beyond one stage's run`;
    const perStage = stages > 1 && !work.name.includes('sleep') ? `(${beyond(now!, 0)})` : '';
    rows.push({ name: work.name, value: now!, unit: 'ms', ...(target ? { target: `<= ${target} ms`, ok: now! <= target } : {}), note: perStage });
    if (other !== undefined) {
      const then = stages > 1 && !work.name.includes('sleep') ? `, ${beyond(other, 1)}` : '';
      rows.push({ name: `  now / then`, value: now! / other, unit: 'x', note: `(then: ${other.toFixed(0)} ms${then}; ${against})` });
    }
  }
  return rows;
}
