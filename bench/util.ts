import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const LOCKSTEP = path.join(REPO, 'bin', 'lockstep.js');

export function tempDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `lockstep-bench-${name}-`));
}

export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [rel, content] of Object.entries(files)) {
    const abs = path.join(dir, rel);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, content);
  }
}

/**
 * Another checkout's bin/lockstep.js (LOCKSTEP_BENCH_BEFORE=/path/to/bin/lockstep.js): the rows that
 * compare start-up costs measure it too, interleaved with this one, so before/after share the machine's load.
 */
export const BEFORE = process.env.LOCKSTEP_BENCH_BEFORE ? path.resolve(process.env.LOCKSTEP_BENCH_BEFORE) : undefined;

/** Run the CLI (this checkout's, or `bin`) and return wall milliseconds; throws with its output if it fails. */
export function timeCli(cwd: string, args: string[], bin = LOCKSTEP): number {
  return timeCmd(cwd, process.execPath, [bin, ...args]);
}

/** Run any command and return wall milliseconds; throws with its output if it fails. */
export function timeCmd(cwd: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', ...(env ? { env } : {}) });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.error?.message}):\n${r.stdout}\n${r.stderr}`);
  return ms;
}

/** Each variant run `n` times, round-robin (so a load spike hits all alike); the median of each. */
export function interleave<T extends Record<string, () => number>>(n: number, variants: T): { [K in keyof T]: number } {
  const xs = new Map<string, number[]>(Object.keys(variants).map((k) => [k, []]));
  for (let i = 0; i < n; i++) for (const [k, f] of Object.entries(variants)) xs.get(k)!.push(f());
  return Object.fromEntries([...xs].map(([k, v]) => [k, median(v)])) as { [K in keyof T]: number };
}

export function runCli(cwd: string, args: string[], cli = LOCKSTEP): string {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`lockstep ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function repeat(n: number, f: () => number): { median: number; min: number; max: number } {
  const xs = Array.from({ length: n }, f);
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

export interface Row {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly target?: string;
  readonly ok?: boolean;
  readonly note?: string;
}

export function printRows(title: string, rows: readonly Row[]): void {
  console.log(`\n## ${title}`);
  for (const r of rows) {
    const target = r.target ? `  (target ${r.target}: ${r.ok ? 'met' : 'MISSED'})` : '';
    console.log(
      `${r.name.padEnd(58)} ${r.value.toFixed(r.unit === 'x' ? 2 : r.value < 10 ? 2 : 0).padStart(9)} ${r.unit}${target}${r.note ? `  ${r.note}` : ''}`,
    );
  }
}
