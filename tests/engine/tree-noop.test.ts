import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StatCache } from '../../runner/hash/stat-cache.js';
import { TreeHasher, type PathState } from '../../runner/hash/tree.js';
import { sameSig, settled, sigOf, SIG_WIDTH } from '../../runner/hash/signature.js';
import { TempRepo, reproJson } from '../helpers.js';

/**
 * The folder no-op (issue 14): a folder dep or output that did not change is
 * answered from its stat-cache record, and nothing that changed ever is.
 * Timing lives in bench/tree.ts; these tests are about correctness only.
 */

/** Files are remembered only once their last change is older than a timestamp tick or so (see `settled`). */
const settle = () => new Promise((r) => setTimeout(r, 150));

const dirs: string[] = [];
let repo: TempRepo | undefined;
afterEach(() => {
  repo?.cleanup();
  repo = undefined;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A folder `data` of n small files in a few subfolders, and a state folder beside it. */
function folder(n = 40): { dir: string; data: string; state: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-tree-'));
  dirs.push(dir);
  const data = path.join(dir, 'data');
  for (let i = 0; i < n; i++) {
    const f = path.join(data, `d${i % 4}`, `f${i}.txt`);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, `file ${String(i).padStart(3, '0')}\n`);
  }
  return { dir, data, state: path.join(dir, 'state') };
}

/** The folder hashed with the stat cache saved in `state` (loaded afresh, as each run does). */
async function hashWithCache(state: string, abs: string): Promise<PathState> {
  const cache = StatCache.load(state);
  const s = await new TreeHasher(cache).hashPath(abs);
  cache.save();
  return s;
}

/** The folder hashed from its bytes alone. */
async function hashFresh(abs: string): Promise<string> {
  const s = await new TreeHasher(StatCache.inMemory()).hashPath(abs);
  if (s.kind === 'missing') throw new Error(`${abs} missing`);
  return s.hash;
}

/**
 * Pin `f`'s mtime to a value utimes can put back exactly (half a second, a minute ago), then return a
 * function that does so: an edit followed by it keeps size and mtime, as `cp -p` or `rsync -t` would.
 */
function pinMtime(f: string): () => void {
  const t = Math.floor(Date.now() / 1000) - 60 + 0.5;
  const put = () => fs.utimesSync(f, t, t);
  put();
  return () => {
    put();
    expect(fs.statSync(f).mtimeMs).toBe(t * 1000);
  };
}

function hashOf(s: PathState): string {
  if (s.kind === 'missing') throw new Error('missing');
  return s.hash;
}

describe('stat signature', () => {
  it('is size, mtime, ctime and inode, compared alike in tuples and columns', () => {
    const st = fs.statSync(import.meta.filename);
    const sig = sigOf(st);
    expect(sig).toEqual([st.size, st.mtimeMs, st.ctimeMs, st.ino]);
    const cols = new Float64Array(3 * SIG_WIDTH);
    cols.set(sig, SIG_WIDTH);
    expect(sameSig(cols, SIG_WIDTH, sig)).toBe(true);
    expect(sameSig(cols, 0, sig)).toBe(false);
    for (let k = 0; k < SIG_WIDTH; k++) {
      const other = [...sig];
      other[k] = other[k]! + 1;
      expect(sameSig(sig, 0, other), `field ${k}`).toBe(false);
    }
  });

  it('trusts only files whose last change is older than their timestamp tick', () => {
    const now = 1_700_000_000_123.5;
    // Sub-second timestamps: a tick is at most 10 ms, the margin 100 ms.
    expect(settled([1, now - 50, now - 500, 7], now)).toBe(false);
    expect(settled([1, now - 500, now - 500, 7], now)).toBe(true);
    // A recent ctime (content rewritten, mtime put back) is as fresh as a recent mtime.
    expect(settled([1, now - 60_000, now - 20, 7], now)).toBe(false);
    // Whole-second timestamps (FAT, some network mounts): seconds of margin.
    const whole = Math.floor(now / 1000) * 1000;
    expect(settled([1, whole - 1000, whole - 1000, 7], now)).toBe(false);
    expect(settled([1, whole - 4000, whole - 4000, 7], now)).toBe(true);
    // A whole-second mtime that was set (tar, utimes) on a fine-grained filesystem: the ctime tells.
    expect(settled([1, whole - 60_000, now - 500, 7], now)).toBe(true);
    // A timestamp in the future (clock skew) is never trusted.
    expect(settled([1, now + 5000, now + 5000, 7], now)).toBe(false);
  });
});

describe('folder records', () => {
  it('an unchanged folder is answered from its record: same hash and manifest, nothing to save', async () => {
    const { data, state } = folder();
    fs.mkdirSync(state);
    fs.writeFileSync(path.join(state, 'stat-cache.json'), '{"version":2,"entries":{}}'); // an earlier version's
    await settle();
    const first = await hashWithCache(state, data);
    expect(fs.existsSync(path.join(state, 'stat-cache.json'))).toBe(false);
    const file = path.join(state, 'stat-cache.bin');
    const before = fs.statSync(file);
    const again = await hashWithCache(state, data);
    expect(hashOf(again)).toBe(hashOf(first));
    expect(hashOf(again)).toBe(await hashFresh(data));
    // The manifest of an answer from the record is built on demand, and is the one hashing gives.
    if (again.kind !== 'dir' || first.kind !== 'dir') throw new Error('not a dir');
    expect(again.manifest).toEqual(first.manifest);
    expect(again.nfiles).toBe(40);
    expect(again.size).toBe(first.size);
    expect(JSON.parse(JSON.stringify(again)).manifest).toHaveLength(40);
    expect({ ...again }.manifest).toHaveLength(40);
    // Nothing was learned, so the cache file was not written again.
    const after = fs.statSync(file);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  });

  it('content rewritten in place at the same size with its mtime put back (cp -p, rsync -t) is seen', async () => {
    const { data, state } = folder();
    const f = path.join(data, 'd1', 'f5.txt');
    const putBack = pinMtime(f);
    await settle();
    const first = hashOf(await hashWithCache(state, data));
    const ino = fs.statSync(f).ino;
    fs.writeFileSync(f, 'FILE 005\n');
    putBack();
    expect(fs.statSync(f).ino).toBe(ino);
    const now = hashOf(await hashWithCache(state, data));
    expect(now).not.toBe(first);
    expect(now).toBe(await hashFresh(data));
  });

  it('a file replaced by a rename with the same size and mtime (a new inode) is seen', async () => {
    const { data, state } = folder();
    const f = path.join(data, 'd2', 'f6.txt');
    pinMtime(f);
    await settle();
    const first = hashOf(await hashWithCache(state, data));
    const { ino, mtimeMs } = fs.statSync(f);
    const tmp = path.join(data, 'swap.tmp');
    fs.writeFileSync(tmp, 'FILE 006\n');
    fs.utimesSync(tmp, mtimeMs / 1000, mtimeMs / 1000);
    fs.renameSync(tmp, f);
    expect(fs.statSync(f).ino).not.toBe(ino);
    expect(fs.statSync(f).mtimeMs).toBe(mtimeMs);
    const now = hashOf(await hashWithCache(state, data));
    expect(now).not.toBe(first);
    expect(now).toBe(await hashFresh(data));
  });

  it('a file changed within the last tick is hashed but not trusted, and is once it settles', async () => {
    const { data, state } = folder(8);
    await settle();
    fs.writeFileSync(path.join(data, 'd0', 'f0.txt'), 'just now\n');
    const cache = StatCache.load(state);
    await new TreeHasher(cache).hashPath(data);
    const rec = cache.tree(data)!;
    expect(rec.complete).toBe(false);
    expect(rec.hashes[rec.names.indexOf('d0/f0.txt')]).toBe('');
    expect(rec.hashes.filter((h) => h !== '')).toHaveLength(7);
    await settle();
    await new TreeHasher(cache).hashPath(data);
    expect(cache.tree(data)!.complete).toBe(true);
  });

  it('a damaged or truncated cache file is ignored as a whole', async () => {
    const { data, state } = folder();
    await settle();
    const good = hashOf(await hashWithCache(state, data));
    const file = path.join(state, 'stat-cache.bin');
    const bytes = fs.readFileSync(file);
    const damaged: [string, Buffer][] = [
      ['empty', Buffer.alloc(0)],
      ['truncated to 7 bytes', bytes.subarray(0, 7)],
      ['truncated to half', bytes.subarray(0, bytes.length >> 1)],
      ['one byte flipped', Buffer.from(bytes.map((b, i) => (i === bytes.length - 20 ? b ^ 0x40 : b)))],
      ['garbage', Buffer.from('{"version":2,"entries":{}}')],
    ];
    for (const [what, buf] of damaged) {
      fs.writeFileSync(file, buf);
      const cache = StatCache.load(state);
      expect(cache.tree(data), what).toBeUndefined();
      expect(hashOf(await new TreeHasher(cache).hashPath(data)), what).toBe(good);
    }
  });

  it('damage that would make a changed file look unchanged is caught, not trusted', async () => {
    const { data, state } = folder();
    const f = path.join(data, 'd3', 'f7.txt');
    await settle();
    await hashWithCache(state, data);
    const old = sigOf(fs.statSync(f));
    fs.writeFileSync(f, 'FILE 007\n'); // same size, new content
    const now = sigOf(fs.statSync(f));
    // Forge the record: the changed file's new signature where its old one was stored.
    const file = path.join(state, 'stat-cache.bin');
    const bytes = fs.readFileSync(file);
    const from = Buffer.from(new Float64Array(old).buffer);
    const at = bytes.indexOf(from);
    expect(at).toBeGreaterThan(0);
    Buffer.from(new Float64Array(now).buffer).copy(bytes, at);
    fs.writeFileSync(file, bytes);
    expect(hashOf(await hashWithCache(state, data))).toBe(await hashFresh(data));
  });

  it('records of folders that are gone are dropped when the cache is next written', async () => {
    const { dir, data, state } = folder(4);
    const other = path.join(dir, 'other');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'x.txt'), 'x');
    await settle();
    await hashWithCache(state, data);
    await hashWithCache(state, other);
    fs.rmSync(other, { recursive: true });
    fs.writeFileSync(path.join(data, 'new.txt'), 'n'); // something to save
    await settle();
    await hashWithCache(state, data);
    const cache = StatCache.load(state);
    expect(cache.tree(data)).toBeDefined();
    expect(cache.tree(other)).toBeUndefined();
  });
});

describe('the folder no-op through the CLI', () => {
  const pipeline =
    'stages:\n  count:\n    cmd: ls -R data | wc -l > count.txt && cp -r data copy\n    deps: [data]\n    outs: [count.txt, copy]\n' +
    "  globbed:\n    cmd: cat data/*/*.txt > all.txt\n    deps: ['data/**/*.txt']\n    outs: [all.txt]\n";

  function dataRepo(): TempRepo {
    const files: Record<string, string> = { 'pipeline.yaml': pipeline };
    for (let i = 0; i < 60; i++) files[`data/d${i % 6}/f${i}.txt`] = `row ${String(i).padStart(3, '0')}\n`;
    return new TempRepo(files);
  }

  /** Run until the stat cache has settled: the first run hashes what it just wrote, the second trusts it. */
  async function settledRepo(pin: string): Promise<{ r: TempRepo; putBack: () => void }> {
    const r = dataRepo();
    const putBack = pinMtime(r.path(pin));
    await settle();
    expect((await reproJson(r)).ran.sort()).toEqual(['count', 'globbed']);
    await settle();
    expect((await reproJson(r)).ran).toEqual([]);
    return { r, putBack };
  }

  it('a no-op (folder and glob deps, folder output) reruns nothing and rewrites nothing in .lockstep nor the lock; status agrees', async () => {
    repo = (await settledRepo('data/d0/f0.txt')).r;
    const watched = ['.lockstep/stat-cache.bin', '.lockstep/parsed-cache.json', 'pipeline.lock'];
    const before = watched.map((f) => fs.statSync(repo!.path(f)).mtimeMs);
    expect((await reproJson(repo)).ran).toEqual([]);
    const status = await repo.run(['status', '--json']);
    expect(JSON.parse(status.stdout).upToDate).toBe(true);
    expect(watched.map((f) => fs.statSync(repo!.path(f)).mtimeMs)).toEqual(before);
  });

  it('a same-size dep edit with its mtime put back reruns the stage; status says so first', async () => {
    const s = await settledRepo('data/d2/f8.txt');
    repo = s.r;
    fs.writeFileSync(repo.path('data/d2/f8.txt'), 'ROW 008\n');
    s.putBack();
    const status = await repo.run(['status', '--json']);
    expect(JSON.parse(status.stdout).stages.count.stale).toBe(true);
    expect(JSON.parse(status.stdout).stages.globbed.stale).toBe(true);
    expect((await reproJson(repo)).ran.sort()).toEqual(['count', 'globbed']);
    expect(repo.read('copy/d2/f8.txt')).toBe('ROW 008\n');
  });

  it('a folder output edited in place with its mtime put back is seen as modified', async () => {
    repo = (await settledRepo('data/d0/f0.txt')).r;
    const f = repo.path('copy/d1/f7.txt');
    const putBack = pinMtime(f);
    await settle();
    expect((await reproJson(repo)).ran).toEqual([]); // the output's record now has the pinned mtime
    fs.writeFileSync(f, 'xxx 007\n');
    putBack();
    const status = await repo.run(['status', '--json']);
    expect(JSON.parse(status.stdout).stages.count.stale).toBe(true);
    expect((await reproJson(repo)).states.count).not.toBe('skipped');
    expect(repo.read('copy/d1/f7.txt')).toBe('row 007\n');
  });

  it('a damaged stat cache only costs time: the no-op stays a no-op, and a change is still seen', async () => {
    repo = (await settledRepo('data/d0/f0.txt')).r;
    const file = repo.path('.lockstep/stat-cache.bin');
    fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 100));
    expect((await reproJson(repo)).ran).toEqual([]);
    fs.writeFileSync(file, 'not a cache');
    repo.write({ 'data/d0/f0.txt': 'ROW 000\n' });
    expect((await reproJson(repo)).ran.sort()).toEqual(['count', 'globbed']);
  });
});
