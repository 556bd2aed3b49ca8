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

/** Run the CLI and return wall milliseconds; throws with its output if it fails. */
export function timeCli(cwd: string, args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [LOCKSTEP, ...args], { cwd, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`lockstep ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return ms;
}

export function runCli(cwd: string, args: string[]): string {
  const r = spawnSync(process.execPath, [LOCKSTEP, ...args], { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
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
    console.log(`${r.name.padEnd(58)} ${r.value.toFixed(r.unit === 'x' ? 2 : r.value < 10 ? 2 : 0).padStart(9)} ${r.unit}${target}${r.note ? `  ${r.note}` : ''}`);
  }
}
