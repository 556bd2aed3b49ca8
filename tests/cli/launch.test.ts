import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO } from '../helpers.js';

/**
 * How the CLI starts: `lockstep` and `leads` as the README has them typed (bin/ on PATH), and the code
 * cache bin/lockstep.js compiles the bundle from, which must never be able to change what runs: a
 * cache that is stale, corrupt or absent only costs the compile.
 */

const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

/** A copy of the installed CLI (bin/ and dist/bundle/, node_modules linked) whose cache we may spoil. */
function install(): string {
  const dir = tmp('lockstep-install-');
  fs.cpSync(path.join(REPO, 'bin'), path.join(dir, 'bin'), { recursive: true, verbatimSymlinks: true });
  fs.cpSync(path.join(REPO, 'dist', 'bundle'), path.join(dir, 'dist', 'bundle'), { recursive: true, preserveTimestamps: true });
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function project(): string {
  const dir = tmp('lockstep-launch-');
  fs.writeFileSync(path.join(dir, 'pipeline.yaml'), 'stages:\n  a:\n    cmd: cp in.txt a.txt\n    deps: [in.txt]\n    outs: [a.txt]\n');
  fs.writeFileSync(path.join(dir, 'in.txt'), 'x\n');
  return dir;
}

/** Rewrite the cache file keeping its header (so it is taken as the bundle's) with `payload` after it. */
function spoil(install: string, payload: Buffer): void {
  const file = path.join(install, 'dist', 'bundle', 'cli.cjs.code-cache');
  const buf = fs.readFileSync(file);
  const n = buf.readUInt32LE(0);
  fs.writeFileSync(file, Buffer.concat([buf.subarray(0, 4 + n), payload]));
}

describe('typing the commands', () => {
  it('bin/ on PATH gives `lockstep` and `leads`, as the README says', () => {
    const env = { ...process.env, PATH: `${path.join(REPO, 'bin')}${path.delimiter}${process.env.PATH ?? ''}` };
    const cwd = project();
    const v = run('lockstep', ['--version'], cwd, env);
    expect(v.stdout.trim()).toMatch(/^lockstep \d+\.\d+\.\d+$/);
    const r = run('lockstep', ['repro'], cwd, env);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(cwd, 'a.txt'), 'utf8')).toBe('x\n');
    const leads = run('leads', ['--help'], cwd, env);
    expect(leads.code).toBe(0);
    expect(leads.stdout).toMatch(/^Usage: leads/);
  });
});

describe('the code cache', () => {
  it('the build records one for the bundle', () => {
    const cache = path.join(REPO, 'dist', 'bundle', 'cli.cjs.code-cache');
    expect(fs.statSync(cache).size).toBeGreaterThan(100_000);
  });

  it('a corrupt cache with a matching header is refused by V8 and the run is the same', () => {
    const inst = install();
    const cwd = project();
    spoil(inst, Buffer.alloc(50_000, 0x5a));
    const r = run(process.execPath, [path.join(inst, 'bin', 'lockstep.js'), 'repro'], cwd);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(fs.readFileSync(path.join(cwd, 'a.txt'), 'utf8')).toBe('x\n');
  });

  it('a cache made for another bundle (stale) is not used, and a run never rewrites it', () => {
    const inst = install();
    const bundle = path.join(inst, 'dist', 'bundle', 'cli.cjs');
    // Edited after the cache was made: same length, new mtime. Were the cache used, the edit would not show.
    const text = fs.readFileSync(bundle, 'latin1');
    const i = text.indexOf('"a declarative, cache-aware pipeline runner');
    expect(i, 'the bundle holds the program description').toBeGreaterThan(0);
    fs.writeFileSync(bundle, text.slice(0, i) + '"A' + text.slice(i + 2), 'latin1');
    fs.utimesSync(bundle, new Date(), new Date(Date.now() + 5000));
    const help = run(process.execPath, [path.join(inst, 'bin', 'lockstep.js'), '--help'], project());
    expect(help.stdout).toContain('A declarative, cache-aware pipeline runner');
    const cacheFile = path.join(inst, 'dist', 'bundle', 'cli.cjs.code-cache');
    const before = fs.readFileSync(cacheFile);
    const cwd = project();
    const r = run(process.execPath, [path.join(inst, 'bin', 'lockstep.js'), 'repro'], cwd);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(cacheFile).equals(before)).toBe(true);
  });

  it('with no cache at all the CLI works, and a module stage (import() of esbuild from the bundle) runs', () => {
    const inst = install();
    fs.rmSync(path.join(inst, 'dist', 'bundle', 'cli.cjs.code-cache'));
    const cwd = project();
    fs.writeFileSync(path.join(cwd, 'pipeline.yaml'), 'stages:\n  m:\n    module: m.ts\n    outs: [o.txt]\n');
    fs.writeFileSync(
      path.join(cwd, 'm.ts'),
      "import fs from 'node:fs';\nexport default function (ctx: { resolve(p: string): string }): void { fs.writeFileSync(ctx.resolve('o.txt'), 'ok'); }\n",
    );
    const r = run(process.execPath, [path.join(inst, 'bin', 'lockstep.js'), 'repro'], cwd);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(cwd, 'o.txt'), 'utf8')).toBe('ok');
  });
});
