import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { canPass, shQuote, ShellSpawner, statusReason } from '../../runner/shell-spawner.js';
import { REPO } from '../helpers.js';

/** Shell stages run by long-lived lanes (runner/shell-spawner.ts): real /bin/sh processes, no mocks. */
let dir: string | undefined;
afterEach(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function tmp(): string {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-lanes-'));
  return dir;
}

/** Runs a command, collecting its lines by stream. */
async function run(sp: ShellSpawner, cmd: string, cwd = os.tmpdir(), vars: Record<string, string> = {}) {
  const lines: [string, string][] = [];
  const r = await sp.run(cmd, cwd, vars, (l, s) => lines.push([s, l]));
  return { r, lines, out: lines.filter(([s]) => s === 'stdout').map(([, l]) => l), err: lines.filter(([s]) => s === 'stderr').map(([, l]) => l) };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('quoting and statuses', () => {
  it('shQuote passes any string through sh unchanged', () => {
    for (const s of [`it's`, `"$HOME" \`id\` $(id)`, 'back\\slash \\n', 'two\nlines', '', 'ünïcødé ✓', `'`, `''\\''`]) {
      expect(execFileSync('/bin/sh', ['-c', `printf %s ${shQuote(s)}`], { encoding: 'utf8' })).toBe(s);
    }
  });

  it('a status is an exit code, or above 128 the signal a shell reports that way', () => {
    expect(statusReason(0)).toEqual({ ok: true });
    expect(statusReason(3)).toEqual({ ok: false, failure: { kind: 'exit-code', code: 3 } });
    expect(statusReason(128 + 15)).toEqual({ ok: false, failure: { kind: 'signal', signal: 'SIGTERM' } });
    expect(statusReason(128 + 9)).toEqual({ ok: false, failure: { kind: 'signal', signal: 'SIGKILL' } });
    expect(statusReason(255)).toEqual({ ok: false, failure: { kind: 'exit-code', code: 255 } });
  });

  it('only variable names sh accepts are passed on a shell line', () => {
    expect(canPass({ LOCKSTEP_STAGE: 'x', _a1: 'y' })).toBe(true);
    expect(canPass({ 'A-B': 'x' })).toBe(false);
    expect(canPass({ '1A': 'x' })).toBe(false);
    expect(canPass({ 'A B': 'x' })).toBe(false);
  });
});

describe('running stages in lanes', () => {
  it('streams stdout and stderr line by line, keeping blank lines and a last line without a newline', async () => {
    const sp = new ShellSpawner(process.env);
    const a = await run(sp, `printf 'one\\n\\n  two\\n\\n'; echo oops >&2; printf 'last'`);
    expect(a.r).toEqual({ ok: true });
    expect(a.out).toEqual(['one', '', '  two', '', 'last']);
    expect(a.err).toEqual(['oops']);
    // Nothing printed: no lines at all; a lone newline: one empty line.
    expect((await run(sp, 'true')).lines).toEqual([]);
    expect((await run(sp, 'echo')).out).toEqual(['']);
    // Text that looks like the end marker, without the lane's secret token, is output like any other.
    expect((await run(sp, `printf '\\001lockstep-end-0000000000000000 0\\nafter\\n'`)).out).toEqual(['\u0001lockstep-end-0000000000000000 0', 'after']);
  });

  it('runs in the given folder with the given variables, with /bin/sh -c semantics ($$ is the stage shell)', async () => {
    const cwd = path.join(tmp(), `it's a "dir"`);
    fs.mkdirSync(cwd);
    const sp = new ShellSpawner({ ...process.env, FROM_BASE: 'base' });
    const r = await run(sp, 'pwd; echo "$LOCKSTEP_STAGE|$FROM_BASE|$ODD"; echo $$ > pid.txt', cwd, { LOCKSTEP_STAGE: 's1', ODD: `a'b "c" $x` });
    expect(r.r).toEqual({ ok: true });
    expect(r.out).toEqual([fs.realpathSync(cwd), `s1|base|a'b "c" $x`]);
    // The variables were set for that stage only.
    expect((await run(sp, 'echo "[$LOCKSTEP_STAGE]"', cwd)).out).toEqual(['[]']);
    expect(Number(fs.readFileSync(path.join(cwd, 'pid.txt'), 'utf8'))).toBeGreaterThan(0);
  });

  it('reports exit codes, a missing folder and a command that is not found as failures', async () => {
    const sp = new ShellSpawner(process.env);
    expect((await run(sp, 'exit 3')).r).toEqual({ ok: false, failure: { kind: 'exit-code', code: 3 } });
    const nf = await run(sp, 'no-such-command-xyz');
    expect(nf.r).toEqual({ ok: false, failure: { kind: 'exit-code', code: 127 } });
    expect(nf.err.join('\n')).toMatch(/no-such-command-xyz: not found/);
    const gone = await run(sp, 'true', path.join(os.tmpdir(), 'lockstep-no-such-dir-xyz'));
    expect(gone.r.ok).toBe(false);
    expect(gone.err.join('\n')).toMatch(/can't cd|No such file/);
    // The lane is still good after all that.
    expect((await run(sp, 'echo fine')).out).toEqual(['fine']);
  });

  it('reuses an idle lane, and runs concurrent stages in separate lanes', async () => {
    const sp = new ShellSpawner(process.env);
    const first = (await run(sp, 'echo $PPID')).out[0];
    const second = (await run(sp, 'echo $PPID')).out[0];
    expect(second).toBe(first);
    const both = await Promise.all([run(sp, 'sleep 0.3; echo $PPID'), run(sp, 'sleep 0.3; echo $PPID')]);
    expect(both[0].out[0]).not.toBe(both[1].out[0]);
    expect(both.map((b) => b.r.ok)).toEqual([true, true]);
  });

  it("a stage's `kill 0` ends only that stage (its lane is its own process group), and a new lane takes over", async () => {
    const sp = new ShellSpawner(process.env);
    const [other, killer] = await Promise.all([run(sp, 'sleep 0.5; echo survived'), run(sp, 'sleep 0.1; kill 0; sleep 5')]);
    expect(killer.r).toEqual({ ok: false, failure: { kind: 'signal', signal: 'SIGTERM' } });
    expect(other.r).toEqual({ ok: true });
    expect(other.out).toEqual(['survived']);
    expect((await run(sp, 'echo next')).out).toEqual(['next']);
  });

  it('signalAll ends a running stage with everything it started; idle lanes are left alone', async () => {
    const cwd = tmp();
    const sp = new ShellSpawner(process.env);
    await run(sp, 'true'); // one idle lane
    const running = run(sp, 'sleep 30 & echo $! > bg.pid; sleep 30', cwd);
    const pidFile = path.join(cwd, 'bg.pid');
    while (!fs.existsSync(pidFile) || !fs.readFileSync(pidFile, 'utf8').trim()) await new Promise((r) => setTimeout(r, 20));
    const bg = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(alive(bg)).toBe(true);
    expect(sp.signalAll('SIGTERM')).toHaveLength(1);
    expect((await running).r).toEqual({ ok: false, failure: { kind: 'signal', signal: 'SIGTERM' } });
    for (let i = 0; i < 100 && alive(bg); i++) await new Promise((r) => setTimeout(r, 20));
    expect(alive(bg)).toBe(false);
    expect((await run(sp, 'echo still')).out).toEqual(['still']);
  });

  it('idle lanes do not keep the process alive', async () => {
    // The compiled module (npm run build), in a process of its own that must end by itself.
    const mod = path.join(REPO, 'dist', 'runner', 'shell-spawner.js');
    const script = `import { ShellSpawner } from ${JSON.stringify(mod)};
const sp = new ShellSpawner(process.env);
const rs = await Promise.all([sp.run('echo a', '/', {}, (l) => console.log(l)), sp.run('echo b', '/', {}, (l) => console.log(l))]);
console.log(JSON.stringify(rs));`;
    const r = await execa(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000, reject: false });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split('\n').sort()).toEqual(['[{"ok":true},{"ok":true}]', 'a', 'b']);
  });
});
