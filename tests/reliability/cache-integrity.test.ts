import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { TempRepo, statesOf } from '../helpers.js';
import { startNginxDav, type RunningServer } from '../../bench/servers.js';

/**
 * A damaged object in the local cache (bit rot, a stray write after chmod)
 * must never reach the workspace or a remote: restores verify what they copy,
 * a damaged object is quarantined and named, reruns replace it, push refuses
 * it and repairs a wrong remote copy, and `cache verify` finds and fixes it.
 */

let repo: TempRepo;
const extra: string[] = [];
afterEach(() => {
  repo?.cleanup();
  for (const d of extra.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

// Each stage appends to runs-<name>.txt (not an output) so the test can count real executions.
const PIPELINE = `stages:
  make:
    cmd: echo run >> runs-make.txt && tr a-z A-Z < in.txt > out.txt
    deps: [in.txt]
    outs: [out.txt]
  tree:
    cmd: echo run >> runs-tree.txt && mkdir -p d/sub && cp in.txt d/a.txt && echo second > d/sub/b.txt
    deps: [in.txt]
    outs: [d]
`;

const runs = (stage: string) => (repo.exists(`runs-${stage}.txt`) ? repo.read(`runs-${stage}.txt`).trim().split('\n').length : 0);

function setup(): TempRepo {
  return new TempRepo({ 'pipeline.yaml': PIPELINE, 'in.txt': 'hello world\n' });
}

/** The hash pipeline.lock records for an output. */
function lockedHash(out: string): string {
  const lock = parse(repo.read('pipeline.lock')) as { stages: Record<string, { outs: { path: string; xxh64: string }[] }> };
  for (const s of Object.values(lock.stages)) for (const o of s.outs) if (o.path === out) return o.xxh64;
  throw new Error(`no output ${out} in the lock`);
}

function objectPath(hash: string, cacheDir = repo.path('.lockstep/cache')): string {
  return path.join(cacheDir, 'files', 'xxh64', hash.slice(0, 2), hash.slice(2));
}

/** Change an object's bytes the way bit rot or a stray write would (same size unless told). */
function corrupt(file: string, content?: string): void {
  fs.chmodSync(file, 0o644);
  if (content !== undefined) fs.writeFileSync(file, content);
  else {
    const b = fs.readFileSync(file);
    b[0] = b[0]! ^ 0x20;
    fs.writeFileSync(file, b);
  }
  fs.chmodSync(file, 0o444);
}

const quarantined = () => (repo.exists('.lockstep/cache/quarantine') ? fs.readdirSync(repo.path('.lockstep/cache/quarantine')) : []);

describe('a damaged object in the local cache', () => {
  it('checkout refuses it: the output and the object are named, the object is quarantined, exit 1, the workspace keeps what it had', async () => {
    repo = setup();
    expect((await repo.run(['repro'])).code).toBe(0);
    const h = lockedHash('out.txt');
    corrupt(objectPath(h));
    repo.rm('out.txt');

    const r = await repo.run(['checkout']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`✗ out.txt: not restored: object ${h} in the cache is damaged`);
    expect(r.stderr).toContain(`moved to .lockstep/cache/quarantine/${h}`);
    expect(r.stderr).not.toMatch(/internal error|at .*\.js/);
    expect(r.stdout).toMatch(/1 not restored \(damaged cache object\)/);
    expect(repo.exists('out.txt')).toBe(false); // bad bytes never reach the workspace
    expect(fs.existsSync(objectPath(h))).toBe(false);
    expect(quarantined()).toEqual([h]);
    // nothing is lost: the quarantined bytes are the damaged object's
    expect(fs.readFileSync(repo.path(`.lockstep/cache/quarantine/${h}`), 'utf8')).toBe('hELLO WORLD\n');
    expect(fs.readdirSync(repo.dir).filter((f) => f.includes('lockstep-tmp'))).toEqual([]);

    // checkout now says the object is missing, and repro makes it again: status recovers
    const again = await repo.run(['checkout']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/out\.txt: 1 object not in the cache/);
    const rr = await repo.run(['repro', '--json']);
    expect(statesOf(rr.stdout).make).toBe('done');
    expect(repo.read('out.txt')).toBe('HELLO WORLD\n');
    expect((await repo.run(['status'])).stdout).toContain('up to date');
    expect(fs.readFileSync(objectPath(h), 'utf8')).toBe('HELLO WORLD\n');
  });

  it('a damaged file inside a directory output: checkout leaves the folder as it was', async () => {
    repo = setup();
    await repo.run(['repro']);
    const b = fs.readFileSync(repo.path('d/sub/b.txt'));
    const manifest = JSON.parse(fs.readFileSync(objectPath(lockedHash('d')), 'utf8')) as { relpath: string; hash: string }[];
    const bHash = manifest.find((e) => e.relpath === 'sub/b.txt')!.hash;
    corrupt(objectPath(bHash));
    repo.write({ 'd/sub/b.txt': 'edited\n' });

    const r = await repo.run(['checkout', '-f', 'tree']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`✗ d: not restored: object ${bHash} in the cache is damaged`);
    expect(repo.read('d/sub/b.txt')).toBe('edited\n'); // untouched: the folder is swapped in only whole
    expect(fs.readdirSync(repo.dir).filter((f) => f.includes('lockstep-tmp'))).toEqual([]);
    expect((await repo.run(['repro', 'tree'])).code).toBe(0);
    expect(fs.readFileSync(repo.path('d/sub/b.txt'))).toEqual(b);
    expect(runs('tree')).toBe(2);
  });

  it('a damaged manifest: checkout names it and quarantines it', async () => {
    repo = setup();
    await repo.run(['repro']);
    const h = lockedHash('d');
    corrupt(objectPath(h), '[{"relpath":"a.txt","hash":"0000000000000000","size":1}]');
    repo.rm('d');
    const r = await repo.run(['checkout', 'tree']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`✗ d: not restored: object ${h} in the cache is damaged: it does not match its hash`);
    expect(repo.exists('d')).toBe(false);
    expect(quarantined()).toEqual([h]);
  });

  it('repro does not restore it: the stage runs, the object is replaced, and status is up to date again', async () => {
    repo = setup();
    await repo.run(['repro']);
    const h = lockedHash('out.txt');
    corrupt(objectPath(h));
    repo.rm('out.txt');

    const r = await repo.run(['repro']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`warning: make: object ${h} in the cache is damaged (it has content hash`);
    expect(r.stdout).toMatch(/make: done/); // ran, not "restored from cache"
    expect(runs('make')).toBe(2);
    expect(repo.read('out.txt')).toBe('HELLO WORLD\n');
    expect(fs.readFileSync(objectPath(h), 'utf8')).toBe('HELLO WORLD\n'); // the good bytes replace it
    expect((await repo.run(['status'])).stdout).toContain('up to date');
    expect(quarantined()).toEqual([h]);
  });

  it('repro -f replaces a damaged object with the good bytes the stage makes', async () => {
    repo = setup();
    await repo.run(['repro']);
    const h = lockedHash('out.txt');
    corrupt(objectPath(h), 'garbage of another size\n');
    const r = await repo.run(['repro', '-f', 'make']);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(objectPath(h), 'utf8')).toBe('HELLO WORLD\n');
    expect(fs.statSync(objectPath(h)).mode & 0o777).toBe(0o444);
    expect(quarantined()).toEqual([h]);
    // and a later restore is clean
    repo.rm('out.txt');
    const c = await repo.run(['checkout']);
    expect(c.code).toBe(0);
    expect(repo.read('out.txt')).toBe('HELLO WORLD\n');
  });

  it('with cache type hardlink the object is verified before it is linked', async () => {
    repo = setup();
    repo.write({ '.lockstep/config': 'cache:\n  type: hardlink\n' });
    await repo.run(['repro']);
    const h = lockedHash('out.txt');
    repo.rm('out.txt'); // the workspace file shares the object's inode: remove it first
    corrupt(objectPath(h));
    const r = await repo.run(['checkout']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`object ${h} in the cache is damaged`);
    expect(repo.exists('out.txt')).toBe(false);
    const rr = await repo.run(['repro']);
    expect(rr.stdout).toMatch(/make: done/);
    expect(repo.read('out.txt')).toBe('HELLO WORLD\n');
  });
});

function folderRemote(): string {
  const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'lockstep-remote-'));
  extra.push(dir);
  repo.write({ '.lockstep/config': `remotes:\n  origin:\n    url: ${dir}\n` });
  return dir;
}

describe('exp apply', () => {
  it('does not restore a damaged object: it names it and exits 1', async () => {
    repo = new TempRepo({ 'pipeline.yaml': 'stages:\n  make:\n    cmd: echo ${x} > out.txt\n    params: [x]\n    outs: [out.txt]\n', 'params.yaml': 'x: 1\n' });
    await repo.run(['repro']);
    expect((await repo.run(['exp', 'run', '-S', 'x=2', '--name', 'two'])).code).toBe(0);
    const h = lockedHash('out.txt');
    repo.write({ 'params.yaml': 'x: 1\n' });
    await repo.run(['repro']);
    corrupt(objectPath(h));
    const r = await repo.run(['exp', 'apply', 'two']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`✗ out.txt: not restored: object ${h} in the cache is damaged`);
    expect(repo.read('out.txt')).toBe('1\n');
    expect((await repo.run(['repro'])).code).toBe(0);
    expect(repo.read('out.txt')).toBe('2\n');
  });
});

describe('push never spreads a damaged object, and repairs a wrong remote copy', () => {
  it('a damaged local object is refused (named, quarantined, exit 1); nothing of it reaches the remote', async () => {
    repo = setup();
    const remote = folderRemote();
    await repo.run(['repro']);
    const h = lockedHash('out.txt');
    corrupt(objectPath(h));
    const r = await repo.run(['push']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`✗ out.txt: object ${h} in the cache is damaged: it has content hash`);
    expect(r.stderr).toContain('it was not pushed');
    expect(fs.existsSync(objectPath(h, remote))).toBe(false);
    expect(quarantined()).toEqual([h]);
    // the workspace still has the good bytes: cache verify --repair puts them back, and push then completes
    expect((await repo.run(['cache', 'verify', '--repair'])).code).toBe(0);
    const again = await repo.run(['push']);
    expect(again.code, again.stderr).toBe(0);
    expect(fs.readFileSync(objectPath(h, remote), 'utf8')).toBe('HELLO WORLD\n');
  });

  it('a damaged manifest is refused too', async () => {
    repo = setup();
    const remote = folderRemote();
    await repo.run(['repro']);
    const h = lockedHash('d');
    corrupt(objectPath(h), '[]');
    const r = await repo.run(['push', 'tree']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`✗ d: object ${h} in the cache is damaged`);
    expect(fs.existsSync(objectPath(h, remote))).toBe(false);
  });

  it('a remote copy of another size is uploaded again by a plain push; one of the same size by push --verify', async () => {
    repo = setup();
    const remote = folderRemote();
    await repo.run(['repro']);
    expect((await repo.run(['push'])).code).toBe(0);
    const h = lockedHash('out.txt');
    const onRemote = objectPath(h, remote);

    fs.writeFileSync(onRemote, 'truncat');
    const r = await repo.run(['push']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`↻ files/xxh64/${h.slice(0, 2)}/${h.slice(2)}: the copy on 'origin' was wrong; uploaded again`);
    expect(r.stdout).toMatch(/pushed 1 object /);
    expect(fs.readFileSync(onRemote, 'utf8')).toBe('HELLO WORLD\n');

    fs.writeFileSync(onRemote, 'HELLO WORLx\n'); // same size: only reading it can tell
    const plain = await repo.run(['push']);
    expect(plain.stdout).toMatch(/pushed 0 objects .*already there/);
    const v = await repo.run(['push', '--verify', '--json']);
    expect(v.code, v.stderr).toBe(0);
    const doc = JSON.parse(v.stdout) as { transferred: number; replaced: string[] };
    expect(doc.replaced).toEqual([`files/xxh64/${h.slice(0, 2)}/${h.slice(2)}`]);
    expect(doc.transferred).toBe(1);
    expect(fs.readFileSync(onRemote, 'utf8')).toBe('HELLO WORLD\n');
    // and a clone's pull gets the good bytes
    const b = new TempRepo({
      'pipeline.yaml': PIPELINE,
      'in.txt': 'hello world\n',
      'pipeline.lock': repo.read('pipeline.lock'),
      '.lockstep/config': repo.read('.lockstep/config'),
    });
    extra.push(b.dir);
    const p = await b.run(['pull']);
    expect(p.code, p.stderr).toBe(0);
    expect(b.read('out.txt')).toBe('HELLO WORLD\n');
  });

  it("the issue's scenario: a damaged object was pushed before; deleting the local cache and rerunning, push repairs the remote", async () => {
    repo = setup();
    const remote = folderRemote();
    await repo.run(['repro']);
    const h = lockedHash('out.txt');
    // as an older lockstep would have: the damaged bytes went to the remote
    fs.mkdirSync(path.dirname(objectPath(h, remote)), { recursive: true });
    fs.writeFileSync(objectPath(h, remote), 'hELLO WORLD\n');
    repo.rm('.lockstep/cache');
    expect((await repo.run(['repro', '-f'])).code).toBe(0);
    const r = await repo.run(['push', '--verify']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('was wrong; uploaded again');
    expect(fs.readFileSync(objectPath(h, remote), 'utf8')).toBe('HELLO WORLD\n');
  });

  it('pull still refuses a tampered remote object', async () => {
    repo = setup();
    const remote = folderRemote();
    await repo.run(['repro']);
    await repo.run(['push']);
    const h = lockedHash('out.txt');
    fs.writeFileSync(objectPath(h, remote), 'HELLO WORLx\n');
    repo.rm('.lockstep/cache');
    repo.rm('out.txt');
    const r = await repo.run(['pull']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`out.txt: object ${h} from remote 'origin' has content hash`);
    expect(repo.exists('out.txt')).toBe(false);
  });

  it("pull and repro --pull replace a damaged local object with the remote's good copy", async () => {
    repo = setup();
    folderRemote();
    await repo.run(['repro']);
    await repo.run(['push']);
    const h = lockedHash('out.txt');
    corrupt(objectPath(h));
    repo.rm('out.txt');
    const p = await repo.run(['pull']);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toContain('↺ out.txt: restored');
    expect(repo.read('out.txt')).toBe('HELLO WORLD\n');
    expect(fs.readFileSync(objectPath(h), 'utf8')).toBe('HELLO WORLD\n');

    corrupt(objectPath(h));
    repo.rm('out.txt');
    const r = await repo.run(['repro', '--pull', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`warning: make: object ${h} in the cache is damaged`);
    expect(statesOf(r.stdout).make).toBe('restored'); // from the remote's copy, not rerun
    expect(runs('make')).toBe(1);
    expect(repo.read('out.txt')).toBe('HELLO WORLD\n');
  });

  it('--verify goes with push only', async () => {
    repo = setup();
    const r = await repo.run(['pull', '--verify']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('error: --verify goes with push (pull always verifies what it downloads)');
  });
});

describe('lockstep cache verify', () => {
  it('a clean cache: exit 0', async () => {
    repo = setup();
    await repo.run(['repro']);
    const r = await repo.run(['cache', 'verify']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^verified 4 objects: all intact$/m); // out.txt, d's manifest, d/a.txt, d/sub/b.txt
  });

  it('finds damaged objects and names the outputs using them; without --repair nothing moves', async () => {
    repo = setup();
    await repo.run(['repro']);
    const h = lockedHash('out.txt');
    const m = lockedHash('d');
    corrupt(objectPath(h));
    corrupt(objectPath(m), '{}');
    const r = await repo.run(['cache', 'verify']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`✗ object ${h} (out.txt) has content hash`);
    expect(r.stderr).toContain(`✗ object ${m} (d) is not a list of files`);
    expect(r.stdout).toMatch(/verified \d+ objects: 2 damaged; 'lockstep cache verify --repair'/);
    expect(fs.existsSync(objectPath(h))).toBe(true);
    expect(quarantined()).toEqual([]);
    const j = JSON.parse((await repo.run(['cache', 'verify', '--json'])).stdout) as { ok: boolean; damaged: { hash: string; usedBy: string[] }[] };
    expect(j.ok).toBe(false);
    expect(j.damaged.map((d) => [d.hash, d.usedBy])).toEqual(
      expect.arrayContaining([
        [h, ['out.txt']],
        [m, ['d']],
      ]),
    );
  });

  it('--repair re-creates damaged objects from workspace files with that content', async () => {
    repo = setup();
    await repo.run(['repro']);
    const h = lockedHash('out.txt');
    const m = lockedHash('d');
    const manifest = JSON.parse(fs.readFileSync(objectPath(m), 'utf8')) as { relpath: string; hash: string }[];
    const b = manifest.find((e) => e.relpath === 'sub/b.txt')!.hash;
    corrupt(objectPath(h));
    corrupt(objectPath(b));
    corrupt(objectPath(m), '[]');
    const r = await repo.run(['cache', 'verify', '--repair']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`↻ ${h}: repaired from a workspace file with that content`);
    expect(r.stdout).toContain(`↻ ${b}: repaired from a workspace file with that content`);
    expect(r.stdout).toMatch(/3 damaged; 3 repaired/);
    expect(r.stderr).toContain(`✗ object ${b} (d/sub/b.txt) has content hash`);
    expect(fs.readFileSync(objectPath(h), 'utf8')).toBe('HELLO WORLD\n');
    expect(quarantined().sort()).toEqual([b, h, m].sort());
    expect((await repo.run(['cache', 'verify'])).code).toBe(0);
    repo.rm('d');
    repo.rm('out.txt');
    expect((await repo.run(['checkout'])).code).toBe(0);
    expect(repo.read('d/sub/b.txt')).toBe('second\n');
  });

  it('--repair fetches from the default remote what the workspace does not have; damage that remains exits 1', async () => {
    repo = setup();
    const remote = folderRemote();
    await repo.run(['repro']);
    await repo.run(['push']);
    const h = lockedHash('out.txt');
    corrupt(objectPath(h));
    repo.write({ 'out.txt': 'edited by hand\n' }); // so the workspace cannot help
    const r = await repo.run(['cache', 'verify', '--repair']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`↻ ${h}: repaired from remote 'origin'`);
    expect(fs.readFileSync(objectPath(h), 'utf8')).toBe('HELLO WORLD\n');

    // the remote's copy is wrong too, and nothing else has it: damage remains, said plainly
    corrupt(objectPath(h));
    fs.writeFileSync(objectPath(h, remote), 'HELLO WORLx\n');
    const bad = await repo.run(['cache', 'verify', '--repair']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`not repaired: object ${h} from remote 'origin' has content hash`);
    expect(bad.stdout).toMatch(/1 damaged; 0 repaired/);
    expect(fs.existsSync(objectPath(h))).toBe(false); // quarantined, and the bad remote copy was not admitted
    // still damage as long as the lock needs the object and nothing has replaced it
    const after = await repo.run(['cache', 'verify']);
    expect(after.code).toBe(1);
    expect(after.stderr).toContain(`✗ object ${h} (out.txt) was found damaged earlier and quarantined`);
    expect(after.stdout).toMatch(/all intact; 1 needed object was quarantined earlier and has no good copy/);
    // a rerun of the stage makes it: clean again
    expect((await repo.run(['repro', '-f'])).code).toBe(0);
    expect((await repo.run(['cache', 'verify'])).code).toBe(0);
  });

  it('bad command lines are one line, exit 2', async () => {
    repo = setup();
    const a = await repo.run(['cache', 'fsck']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain("error: unknown command 'fsck'");
    const b = await repo.run(['cache', 'verify', 'x']);
    expect(b.code).toBe(2);
    expect(b.stderr.trim()).toBe("error: too many arguments for 'verify'. Expected 0 arguments but got 1.");
  });
});

describe('an HTTP (WebDAV) remote', () => {
  let server: RunningServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it('push refuses a damaged local object and replaces wrong remote copies (size at once, content with --verify)', async () => {
    server = await startNginxDav();
    repo = setup();
    repo.write({ '.lockstep/config': `remotes:\n  origin:\n    url: ${server.url}\n` });
    await repo.run(['repro']);
    const h = lockedHash('out.txt');
    const onRemote = path.join(server.dataDir, 'files', 'xxh64', h.slice(0, 2), h.slice(2));

    corrupt(objectPath(h));
    const refused = await repo.run(['push', 'make'], { env: server.env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`✗ out.txt: object ${h} in the cache is damaged`);
    expect(fs.existsSync(onRemote)).toBe(false);
    expect((await repo.run(['cache', 'verify', '--repair'], { env: server.env })).code).toBe(0); // from the workspace
    const ok = await repo.run(['push', 'make'], { env: server.env });
    expect(ok.code, ok.stderr + ok.stdout).toBe(0);
    expect(fs.readFileSync(onRemote, 'utf8')).toBe('HELLO WORLD\n');

    fs.writeFileSync(onRemote, 'short');
    const r = await repo.run(['push', 'make'], { env: server.env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('was wrong; uploaded again');
    expect(fs.readFileSync(onRemote, 'utf8')).toBe('HELLO WORLD\n');

    fs.writeFileSync(onRemote, 'HELLO WORLx\n');
    expect((await repo.run(['push', 'make'], { env: server.env })).stdout).toMatch(/already there/);
    const v = await repo.run(['push', 'make', '--verify'], { env: server.env });
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toContain('was wrong; uploaded again');
    expect(fs.readFileSync(onRemote, 'utf8')).toBe('HELLO WORLD\n');
  }, 60_000);
});
