import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOCKSTEP, REPO } from '../helpers.js';

/**
 * Every command of both programs answers --help with its own usage on stdout and exit 0. The commands are
 * found by walking the help texts themselves, so a command added later is covered without editing this.
 */
const LEADS = path.join(REPO, 'bin', 'leads.js');

function run(bin: string, args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: REPO, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The subcommands a help text lists (commander's "Commands:" block), without `help`. */
function subcommands(help: string): string[] {
  const block = /\nCommands:\n([\s\S]*)$/.exec(help)?.[1] ?? '';
  return [...block.matchAll(/^ {2}(\w[\w-]*)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
}

function walk(bin: string, name: string): { path: string[]; help: ReturnType<typeof run> }[] {
  const out: { path: string[]; help: ReturnType<typeof run> }[] = [];
  const visit = (p: string[]) => {
    const help = run(bin, [...p, '--help']);
    out.push({ path: p, help });
    for (const c of subcommands(help.stdout)) visit([...p, c]);
  };
  visit([]);
  expect(out.length, `${name} lists its commands`).toBeGreaterThan(5);
  return out;
}

describe.each([
  [
    'lockstep',
    LOCKSTEP,
    [
      'repro',
      'status',
      'dag',
      'checkout',
      'push',
      'pull',
      'fetch',
      'remote add',
      'gc',
      'params diff',
      'metrics show',
      'metrics diff',
      'plots show',
      'plots diff',
      'exp run',
      'exp show',
      'exp diff',
      'exp apply',
      'exp remove',
    ],
  ],
  ['leads', LEADS, ['runs list', 'runs show', 'registry list', 'registry show', 'registry promote', 'predict', 'serve', 'drift']],
])('%s --help', (name, bin, expected) => {
  const all = walk(bin as string, name as string);

  it('covers every command, each with its own usage, exit 0 and nothing on stderr', () => {
    const paths = all.map((c) => c.path.join(' '));
    for (const e of expected as string[]) expect(paths).toContain(e);
    for (const { path: p, help } of all) {
      const label = `${name} ${p.join(' ')} --help`;
      expect(help.code, label).toBe(0);
      expect(help.stderr, label).toBe('');
      expect(help.stdout, label).toMatch(new RegExp(`^Usage: ${name}${p.length ? ' ' + p.join(' ') : ''} `));
      if (p.length) expect(help.stdout.split('\n')[2]!.length, `${label} describes the command`).toBeGreaterThan(10);
    }
  });

  it('-h and `help COMMAND` say the same as --help', () => {
    const sample = all.find((c) => c.path.length === 1)!;
    expect(run(bin as string, [...sample.path, '-h']).stdout).toBe(sample.help.stdout);
    expect(run(bin as string, ['help', ...sample.path]).stdout).toBe(sample.help.stdout);
  });

  it('a command line that cannot run is one line (and the usage on request only), exit 2', () => {
    const prefix = name === 'leads' ? 'leads: ' : '';
    for (const args of [['frobnicate'], [all[1]!.path[0]!, '--no-such-option']]) {
      const r = run(bin as string, args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')[0], args.join(' ')).toMatch(new RegExp(`^${prefix}error: unknown (command|option) '`));
      expect(r.stderr, args.join(' ')).not.toMatch(/^\s+at /m);
    }
  });
});

describe('argument mistakes named precisely', () => {
  it.each([
    [['repro', '-j', 'x'], "error: --jobs must be a whole number of at least 1, got 'x'"],
    [['repro', '--wait', '-1'], "error: --wait must be a whole number of at least 0, got '-1'"],
    [['exp', 'apply'], "error: missing required argument 'name'"],
    [['exp', 'diff', 'a'], "error: missing required argument 'b'"],
    [['dag', '--dot', '--mermaid'], 'error: choose one of --mermaid, --dot, --html'],
    [['dag', '-o', 'x.html'], 'error: -o/--out goes with --html'],
    [['params', 'diff', 'a', 'b', 'c'], 'error: params diff takes at most two revisions'],
    [['exp', 'show', '--json', '--csv'], 'error: choose one of --json, --csv, --md'],
  ])('lockstep %j', (args, line) => {
    const r = run(LOCKSTEP, args);
    expect([r.code, r.stderr.trim().split('\n')[0]]).toEqual([2, line]);
  });
});
