import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { TempRepo, filesUnder, statesOf } from '../helpers.js';
import { isStaleTemp, isTempName, sweepTemps } from '../../runner/litter.js';
import { ABANDONED_UPLOAD_MS, isAbandonedUpload } from '../../runner/remote/dir.js';

/**
 * kill -9 between writing a temp file and renaming it leaves the temp file
 * behind: `<out>.lockstep-tmp-<pid>-<random>` beside an output (or a staging
 * folder of that name), `.tmp-<host>-<pid>-<random>` on a folder remote,
 * `<cache>/tmp/<pid>-<random>`. The next run removes them and nothing ever
 * takes them for content.
 */

let repo: TempRepo;
const extra: string[] = [];
afterEach(() => {
  repo?.cleanup();
  for (const d of extra.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** The pid of a process that has exited: what a killed run's temp names carry. */
function deadPid(): number {
  return spawnSync('true').pid!;
}

const HOST = os.hostname().replace(/[^A-Za-z0-9.]/g, '_') || 'host';

const PIPELINE = `stages:
  make:
    cmd: echo run >> runs-make.txt && mkdir -p d/sub && cp in.txt d/a.txt && echo two > d/sub/b.txt && tr a-z A-Z < in.txt > out.txt
    deps: [in.txt]
    outs: [d, out.txt]
  use:
    cmd: echo run >> runs-use.txt && ls d d/sub > listing.txt && cat d/*.txt out* > all.txt
    deps: [d, "out*"]
    outs: [listing.txt, all.txt]
`;

const runs = (stage: string) => (repo.exists(`runs-${stage}.txt`) ? repo.read(`runs-${stage}.txt`).trim().split('\n').length : 0);
const littered = () =>
  [...new Set([...filesUnder(repo.dir), ...fs.readdirSync(repo.dir).map((f) => repo.path(f))])].filter((f) => f.includes('lockstep-tmp')).sort();

/** Leave what a checkout killed mid-way leaves: a temp file beside out.txt, a staging folder beside d, a temp file inside d. */
function litter(pid: number): void {
  repo.write({
    [`out.txt.lockstep-tmp-${pid}-k1ll3d`]: 'HALF WRITT',
    [`d.lockstep-tmp-${pid}-st4g3d/a.txt`]: 'half\n',
    [`d/a.txt.lockstep-tmp-${pid}`]: 'an unshared copy, never renamed\n',
    [`d/sub/b.txt.lockstep-tmp-${pid}-x1`]: 'tw',
  });
}

describe('temp files left by a killed run', () => {
  it('are never taken for outputs or deps: status stays up to date, hashes and the lock do not change', async () => {
    repo = new TempRepo({ 'pipeline.yaml': PIPELINE, 'in.txt': 'hello\n' });
    expect((await repo.run(['repro'])).code).toBe(0);
    const lock = repo.read('pipeline.lock');
    litter(deadPid());
    const st = await repo.run(['status']);
    expect(st.stdout, st.stdout).toContain('up to date');
    const dry = await repo.run(['repro', '--dry', '--json']);
    expect(Object.values(statesOf(dry.stdout))).toEqual(['skipped', 'skipped']);
    expect(littered().length).toBe(5); // 4 temp names and the file in the staging folder: --dry removes nothing
    const r = await repo.run(['repro', '--json']);
    expect(statesOf(r.stdout)).toEqual({ make: 'skipped', use: 'skipped' });
    expect(repo.read('pipeline.lock')).toBe(lock);
    expect(runs('use')).toBe(1);
  });

  it('the next repro removes them (owner pid dead), and a stage run after that never sees them', async () => {
    repo = new TempRepo({ 'pipeline.yaml': PIPELINE, 'in.txt': 'hello\n' });
    await repo.run(['repro']);
    litter(deadPid());
    repo.write({ [`.lockstep/cache/tmp/${deadPid()}-abcdefgh`]: 'half an object' });
    // A module stage's context file of the killed run; one of a live process is kept.
    repo.write({ [`.lockstep/tmp/ctx-${deadPid()}-train.json`]: '{}', [`.lockstep/tmp/ctx-${process.pid}-train.json`]: '{}' });
    repo.write({ 'in.txt': 'changed\n' });
    const r = await repo.run(['repro']);
    expect(r.code, r.stderr).toBe(0);
    expect(littered()).toEqual([]);
    expect(fs.readdirSync(repo.path('.lockstep/cache/tmp'))).toEqual([]);
    expect(fs.readdirSync(repo.path('.lockstep/tmp'))).toEqual([`ctx-${process.pid}-train.json`]);
    expect(repo.read('listing.txt')).not.toContain('lockstep-tmp');
    expect(repo.read('all.txt')).toBe('changed\nCHANGED\n'); // d/a.txt, out.txt: no temp file among them
    // the lock's manifest of d lists exactly the stage's files
    const manifest = fs.readFileSync(
      repo.path('.lockstep/cache/files/xxh64/' + /path: d\n\s+xxh64: ([0-9a-f]{2})([0-9a-f]{14}\.dir)/.exec(repo.read('pipeline.lock'))!.slice(1, 3).join('/')),
      'utf8',
    );
    expect(JSON.parse(manifest).map((e: { relpath: string }) => e.relpath)).toEqual(['a.txt', 'sub/b.txt']);
  });

  it('a live pid with a file older than the run is litter too (the pid was reused); the cache temp of a live process is kept', async () => {
    repo = new TempRepo({ 'pipeline.yaml': PIPELINE, 'in.txt': 'hello\n' });
    await repo.run(['repro']);
    litter(process.pid); // this test process is alive, but did not write these during the next run
    const old = new Date(Date.now() - 60_000);
    for (const f of littered()) fs.utimesSync(f, old, old);
    repo.write({ [`.lockstep/cache/tmp/${process.pid}-abcdefgh`]: 'being written by a live process' });
    const r = await repo.run(['repro']);
    expect(r.code, r.stderr).toBe(0);
    expect(littered()).toEqual([]);
    expect(fs.readdirSync(repo.path('.lockstep/cache/tmp'))).toEqual([`${process.pid}-abcdefgh`]);
  });

  it('checkout and pull sweep them too', async () => {
    repo = new TempRepo({ 'pipeline.yaml': PIPELINE, 'in.txt': 'hello\n' });
    await repo.run(['repro']);
    litter(deadPid());
    repo.rm('out.txt');
    const c = await repo.run(['checkout']);
    expect(c.code, c.stderr).toBe(0);
    expect(littered()).toEqual([]);
    expect(repo.read('out.txt')).toBe('HELLO\n');
  });
});

describe('temp uploads on a folder remote', () => {
  it('a push removes abandoned ones in the folders it writes to, keeps live ones, and never lists them as objects', async () => {
    repo = new TempRepo({ 'pipeline.yaml': PIPELINE, 'in.txt': 'hello\n' });
    const remote = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-remote-'));
    extra.push(remote);
    repo.write({ '.lockstep/config': `remotes:\n  origin:\n    url: ${remote}\n` });
    await repo.run(['repro']);
    const h = /path: out\.txt\n\s+xxh64: ([0-9a-f]{16})/.exec(repo.read('pipeline.lock'))![1]!;
    const fan = path.join(remote, 'files', 'xxh64', h.slice(0, 2));
    fs.mkdirSync(fan, { recursive: true });
    const dead = deadPid();
    const put = (name: string, ageMs = 0) => {
      fs.writeFileSync(path.join(fan, name), 'partial');
      const t = new Date(Date.now() - ageMs);
      fs.utimesSync(path.join(fan, name), t, t);
    };
    put(`.tmp-${HOST}-${dead}-aaaa1111`); // this machine, owner gone
    put(`.tmp-${dead}-bbbb2222`, ABANDONED_UPLOAD_MS + 60_000); // older format, untouched for over an hour
    put(`.tmp-${HOST}-${process.pid}-cccc3333`); // a live upload on this machine
    put(`.tmp-other-machine-${dead}-dddd4444`); // another machine's, fresh: cannot tell, so kept

    const r = await repo.run(['push', 'out.txt']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readdirSync(fan).sort()).toEqual([`.tmp-${HOST}-${process.pid}-cccc3333`, `.tmp-other-machine-${dead}-dddd4444`, h.slice(2)].sort());
    // a clone's fetch sees objects only
    const st = await repo.run(['status', '--remote']);
    expect(st.stdout).not.toContain('.tmp-');
  });

  it('isAbandonedUpload: by owner on this machine, else by age', () => {
    const dead = deadPid();
    const now = Date.now();
    expect(isAbandonedUpload(`.tmp-${HOST}-${dead}-abc`, now, now)).toBe(true);
    expect(isAbandonedUpload(`.tmp-${HOST}-${process.pid}-abc`, now, now)).toBe(false);
    expect(isAbandonedUpload(`.tmp-${HOST}-${process.pid}-abc`, now - ABANDONED_UPLOAD_MS - 1, now)).toBe(true);
    expect(isAbandonedUpload(`.tmp-some-host-${dead}-abc`, now, now)).toBe(false);
    expect(isAbandonedUpload(`.tmp-${dead}-abc`, now, now)).toBe(false);
    expect(isAbandonedUpload(`.tmp-${dead}-abc`, now - ABANDONED_UPLOAD_MS - 1, now)).toBe(true);
    expect(isAbandonedUpload('.tmp-garbage', 0, now)).toBe(false);
    expect(isAbandonedUpload('0123456789abcd', 0, now)).toBe(false);
  });
});

describe('litter rules (in-process)', () => {
  it('isTempName and isStaleTemp', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-litter-'));
    extra.push(dir);
    expect(isTempName('model.bin.lockstep-tmp-123-abc')).toBe(true);
    expect(isTempName('model.bin')).toBe(false);
    const mine = path.join(dir, `a.lockstep-tmp-${process.pid}-x`);
    const dead = path.join(dir, `b.lockstep-tmp-${deadPid()}-x`);
    const liveOld = path.join(dir, `c.lockstep-tmp-${process.ppid}-x`);
    const liveNew = path.join(dir, `d.lockstep-tmp-${process.ppid}-y`);
    for (const f of [mine, dead, liveOld, liveNew]) fs.writeFileSync(f, '');
    fs.utimesSync(liveOld, new Date(0), new Date(0));
    const since = Date.now() - 10_000;
    expect(isStaleTemp(mine, 0)).toBe(false); // never our own, however old
    expect(isStaleTemp(dead, since)).toBe(true);
    expect(isStaleTemp(liveOld, since)).toBe(true);
    expect(isStaleTemp(liveNew, since)).toBe(false); // a live process wrote it during this run
    expect(sweepTemps(dir, ['a'], since)).toEqual([path.basename(dead), path.basename(liveOld)]);
  });
});
