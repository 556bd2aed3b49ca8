import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { execa, type ResultPromise } from 'execa';
import { expect } from 'vitest';
import type { Browser, Page } from 'playwright-core';

export const REPO = path.resolve(import.meta.dirname, '..');
export const LOCKSTEP = path.join(REPO, 'bin', 'lockstep.js');
export const SHARED_DATA = path.resolve(REPO, '..', 'shared', 'data');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A temporary repository with real files; removed by the caller via `cleanup`. */
export class TempRepo {
  readonly dir: string;
  constructor(files: Record<string, string> = {}) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-test-'));
    this.write(files);
  }

  write(files: Record<string, string>): void {
    for (const [rel, content] of Object.entries(files)) {
      const abs = path.join(this.dir, rel);
      fs.mkdirSync(path.dirname(abs), { recursive: true });
      fs.writeFileSync(abs, content);
    }
  }

  read(rel: string): string {
    return fs.readFileSync(path.join(this.dir, rel), 'utf8');
  }

  exists(rel: string): boolean {
    return fs.existsSync(path.join(this.dir, rel));
  }

  path(rel: string): string {
    return path.join(this.dir, rel);
  }

  rm(rel: string): void {
    fs.rmSync(path.join(this.dir, rel), { recursive: true, force: true });
  }

  /** Run the real CLI as a subprocess. */
  async run(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<CliResult> {
    const r = await execa(process.execPath, [LOCKSTEP, ...args], {
      cwd: opts.cwd ?? this.dir,
      env: { ...opts.env, NO_COLOR: '1' },
      reject: false,
      stdin: 'ignore',
    });
    return { code: r.exitCode ?? -1, stdout: r.stdout as string, stderr: r.stderr as string };
  }

  spawn(args: string[], opts: { env?: Record<string, string> } = {}): ResultPromise {
    return execa(process.execPath, [LOCKSTEP, ...args], { cwd: this.dir, env: opts.env, reject: false, stdin: 'ignore' });
  }

  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Stages of the repro summary by their reported state, parsed from `repro --json`. */
export function statesOf(jsonOut: string): Record<string, string> {
  const doc = JSON.parse(jsonOut) as { stages: { name: string; state: string }[] };
  return Object.fromEntries(doc.stages.map((s) => [s.name, s.state]));
}

export function ran(jsonOut: string): string[] {
  return Object.entries(statesOf(jsonOut))
    .filter(([, s]) => s === 'done')
    .map(([n]) => n);
}

/** Every file under `dir` (recursively), as absolute paths; none when it does not exist. */
export function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[]).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

/**
 * A fresh clone of this repository as a new user gets it: the files git tracks (as they are in the working
 * tree, so uncommitted work is what is tested), no outputs, no cache, no registry; node_modules and the
 * built dist/ linked in, as after `npm ci`. Tests and CI config are left out: they are not the user's.
 */
export function freshClone(prefix = 'lockstep-clone-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO, encoding: 'utf8' });
  for (const f of listed.split('\0').filter(Boolean)) {
    if (!fs.existsSync(path.join(REPO, f)) || f.startsWith('tests/') || f.startsWith('.github/')) continue;
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.copyFileSync(path.join(REPO, f), path.join(dir, f));
  }
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  fs.symlinkSync(path.join(REPO, 'dist'), path.join(dir, 'dist'));
  return dir;
}

/** One bad-input report: exit 2, exactly one `error:` line naming what is wrong, no crash. */
export function expectOneError(r: CliResult, ...mentions: (string | RegExp)[]): string {
  expect(r.code, r.stderr + r.stdout).toBe(2);
  const errors = r.stderr.split('\n').filter((l) => /\berror:/.test(l));
  expect(errors, r.stderr).toHaveLength(1);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at .*:\d+:\d+/);
  for (const m of mentions) expect(errors[0]).toMatch(m);
  return errors[0]!;
}

/** `repro --json` in a repository: the result, with the stages that ran and every stage's state. */
export async function reproJson(repo: TempRepo, args: string[] = []): Promise<CliResult & { ran: string[]; states: Record<string, string> }> {
  const r = await repo.run(['repro', '--json', ...args]);
  expect(r.stdout.trim().startsWith('{'), r.stderr).toBe(true);
  return { ...r, ran: ran(r.stdout), states: statesOf(r.stdout) };
}

/** Headless Chromium (the Debian package scripts/system-packages.sh installs), with nothing of its own on the network. */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Everything on `page` a user would see as broken: console errors, uncaught exceptions, failed requests. */
export function collectPageErrors(page: Page, errors: string[] = []): string[] {
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
  return errors;
}
