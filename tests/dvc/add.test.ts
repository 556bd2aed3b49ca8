import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { TempRepo, filesUnder } from '../helpers.js';

let repo: TempRepo;
const extra: string[] = [];
afterEach(() => {
  repo?.cleanup();
  for (const d of extra.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const XML = '<posts>' + Array.from({ length: 200 }, (_, i) => `<row id="${i}" body="post ${i}"/>`).join('') + '</posts>\n';

// example-get-started's shape: raw data tracked by data/data.xml.dvc, a pipeline that depends on it.
const PIPELINE = `stages:
  prepare:
    cmd: node prepare.js
    deps: [data/data.xml, prepare.js]
    outs: [data/prepared]
`;

const PREPARE = `const fs = require('fs');
const s = fs.readFileSync('data/data.xml', 'utf8');
fs.mkdirSync('data/prepared', { recursive: true });
fs.writeFileSync('data/prepared/rows.txt', String(s.split('<row').length - 1));
`;

function git(dir: string, cmd: string): string {
  return execSync(cmd, { cwd: dir, encoding: 'utf8' });
}

function gitRepo(files: Record<string, string> = {}): TempRepo {
  const r = new TempRepo({ 'pipeline.yaml': PIPELINE, 'data/data.xml': XML, 'prepare.js': PREPARE, ...files });
  git(r.dir, 'git init -q && git config user.email t@t && git config user.name t');
  return r;
}

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-add-'));
  extra.push(d);
  return d;
}

describe('lockstep add', () => {
  it('writes PATH.dvc and a .gitignore entry beside the data, so git add -A commits the pointer, not the data', async () => {
    repo = gitRepo({ 'images/a.png': 'A', 'images/sub/b.png': 'BB' });
    const r = await repo.run(['add', 'data/data.xml', 'images']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^added data\/data\.xml: data\/data\.xml\.dvc \(xxh64 [0-9a-f]{16}\)$/m);
    expect(r.stdout).toMatch(/^added images \(2 files\): images\.dvc/m);
    expect(r.stdout).toContain('git add data/data.xml.dvc images.dvc data/.gitignore .gitignore');
    const ptr = YAML.parse(repo.read('data/data.xml.dvc')) as { outs: Record<string, unknown>[] };
    expect(ptr.outs).toEqual([{ xxh64: expect.stringMatching(/^[0-9a-f]{16}$/), size: XML.length, hash: 'xxh64', path: 'data.xml' }]);
    expect((YAML.parse(repo.read('images.dvc')) as { outs: Record<string, unknown>[] }).outs[0]).toMatchObject({
      xxh64: expect.stringMatching(/\.dir$/),
      size: 3,
      nfiles: 2,
      path: 'images',
    });
    expect(repo.read('data/.gitignore')).toBe('/data.xml\n');
    expect(repo.read('.gitignore')).toBe('/images\n');
    git(repo.dir, 'git add -A');
    const staged = git(repo.dir, 'git diff --cached --name-only').split('\n').filter(Boolean).sort();
    expect(staged).toEqual(['.gitignore', '.lockstep/.gitignore', 'data/.gitignore', 'data/data.xml.dvc', 'images.dvc', 'pipeline.yaml', 'prepare.js']);
    // the content is in the cache
    expect(filesUnder(repo.path('.lockstep/cache/files')).length).toBe(4); // xml, 2 images, 1 manifest

    // adding again after an edit updates the pointer and never repeats the .gitignore line
    repo.write({ 'data/data.xml': XML + '<!-- v2 -->\n' });
    expect((await repo.run(['add', 'data/data.xml'])).code).toBe(0);
    expect(repo.read('data/.gitignore')).toBe('/data.xml\n');
    expect((YAML.parse(repo.read('data/data.xml.dvc')) as { outs: { size: number }[] }).outs[0]!.size).toBe(XML.length + 12);
  });

  it('an output is ignored once, where DVC puts it, and not at all when a rule of the repository already ignores it', async () => {
    repo = gitRepo({
      '.gitignore': '*.bin\n',
      'pipeline.yaml':
        PIPELINE +
        `  pack:\n    cmd: cp data/data.xml model.bin && cp data/data.xml models/m.txt\n    deps: [data/data.xml]\n    outs: [model.bin, models/m.txt]\n  report:\n    cmd: echo 1 > report.txt\n    outs: [{report.txt: {cache: false}}]\n`,
      'models/.keep': '',
    });
    expect((await repo.run(['repro'])).code).toBe(0);
    expect(repo.read('data/.gitignore')).toBe('/prepared\n');
    expect(repo.read('models/.gitignore')).toBe('/m.txt\n');
    expect(repo.read('.gitignore')).toBe('*.bin\n'); // model.bin: already ignored by the user's rule
    expect((await repo.run(['repro', '-f'])).code).toBe(0);
    expect(repo.read('data/.gitignore')).toBe('/prepared\n');
    git(repo.dir, 'git add -A');
    const staged = git(repo.dir, 'git diff --cached --name-only');
    expect(staged).not.toMatch(/model\.bin|m\.txt|prepared\//);
    expect(staged).toContain('report.txt'); // cache: false outputs belong in git
  });

  it('push to a folder remote; a fresh clone pulls the added data back; gc keeps it', async () => {
    repo = gitRepo();
    const remote = tmpDir();
    expect((await repo.run(['remote', 'add', 'store', remote, '--default'])).code).toBe(0);
    expect((await repo.run(['add', 'data/data.xml'])).code).toBe(0);
    expect((await repo.run(['repro'])).code).toBe(0);
    // gc -f keeps what the pointer names (xml) besides the stage's output (manifest + rows.txt)
    const gc = await repo.run(['gc', '-f', '--json']);
    expect(JSON.parse(gc.stdout)).toMatchObject({ removed: true, objects: 0, kept: 3 });
    expect((await repo.run(['status', '--remote'])).stdout).toContain("data/data.xml.dvc: data/data.xml: missing from remote 'store'");
    const push = await repo.run(['push']);
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout).toMatch(/pushed [3-9] objects/);
    git(repo.dir, 'git add -A && git commit -qm data');

    const clone = path.join(tmpDir(), 'clone');
    git(path.dirname(clone), `git clone -q ${repo.dir} clone`);
    expect(fs.existsSync(path.join(clone, 'data/data.xml'))).toBe(false);
    const c = new TempRepo();
    fs.rmSync(c.dir, { recursive: true });
    const st = await c.run(['status'], { cwd: clone });
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toContain('prepare:\n    dep missing: data/data.xml');
    expect(st.stdout).toContain('data/data.xml.dvc:\n    not in workspace: data/data.xml (lockstep pull data/data.xml.dvc)');
    const repro = await c.run(['repro'], { cwd: clone });
    expect(repro.code).toBe(1);
    expect(repro.stdout + repro.stderr).toContain(
      "dep 'data/data.xml' does not exist (it is tracked by data/data.xml.dvc: 'lockstep pull data/data.xml.dvc' brings it)",
    );
    // repro --pull brings the tracked dep first, then restores the stage from the remote
    const clone2 = path.join(path.dirname(clone), 'clone2');
    git(path.dirname(clone), `git clone -q ${repo.dir} clone2`);
    const rp = await c.run(['repro', '--pull'], { cwd: clone2 });
    expect(rp.code, rp.stderr).toBe(0);
    expect(rp.stdout).toContain('↺ data/data.xml: pulled');
    expect(rp.stdout).toMatch(/prepare: restored from cache/); // its lock entry matches: outputs fetched, nothing run
    expect(fs.readFileSync(path.join(clone2, 'data/prepared/rows.txt'), 'utf8')).toBe('200');

    const pull = await c.run(['pull', 'data/data.xml.dvc'], { cwd: clone });
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout).toContain('↺ data/data.xml: restored');
    expect(fs.readFileSync(path.join(clone, 'data/data.xml'), 'utf8')).toBe(XML);
    expect(fs.existsSync(path.join(clone, 'data/prepared'))).toBe(false); // only the target
    const all = await c.run(['pull'], { cwd: clone });
    expect(all.code, all.stderr).toBe(0);
    expect(fs.readFileSync(path.join(clone, 'data/prepared/rows.txt'), 'utf8')).toBe('200');
    expect((await c.run(['status'], { cwd: clone })).stdout).toBe('Pipeline is up to date.');
  });

  it('gc keeps the data of pointers in the workspace, and with -A those of every commit', async () => {
    repo = gitRepo();
    expect((await repo.run(['add', 'data/data.xml'])).code).toBe(0);
    git(repo.dir, 'git add -A && git commit -qm v1');
    repo.write({ 'data/data.xml': XML.replace('post 0', 'post zero') });
    expect((await repo.run(['add', 'data/data.xml'])).code).toBe(0);
    git(repo.dir, 'git add -A && git commit -qm v2');
    expect(JSON.parse((await repo.run(['gc', '-A', '--json'])).stdout)).toMatchObject({ objects: 0, kept: 2 });
    expect(JSON.parse((await repo.run(['gc', '-f', '--json'])).stdout)).toMatchObject({ removed: true, objects: 1, kept: 1 });
    repo.rm('data/data.xml');
    expect((await repo.run(['checkout'])).stdout).toContain('↺ data/data.xml: restored from the cache');
    expect(repo.read('data/data.xml')).toContain('post zero');
  });

  it("reads a DVC repository's md5 .dvc file: status compares md5; add moves it to our cache and keeps its other fields", async () => {
    const md5 = crypto.createHash('md5').update(XML).digest('hex');
    repo = gitRepo({
      'data/data.xml.dvc': `outs:\n- md5: ${md5}\n  size: ${XML.length}\n  hash: md5\n  path: data.xml\n  desc: StackOverflow posts\n`,
      'data/.gitignore': '/data.xml\n',
    });
    let st = await repo.run(['status']);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toBe('prepare:\n    never run');
    repo.write({ 'data/data.xml': XML.replace('post 1"', 'post one"') });
    st = await repo.run(['status']);
    expect(st.stdout).toContain('data/data.xml.dvc:\n    modified: data/data.xml (lockstep add data/data.xml records it)');
    repo.rm('data/data.xml');
    st = await repo.run(['status', '--json']);
    expect(JSON.parse(st.stdout).tracked).toEqual([{ file: 'data/data.xml.dvc', path: 'data/data.xml', state: 'not in workspace' }]);

    repo.write({ 'data/data.xml': XML });
    expect((await repo.run(['add', 'data/data.xml'])).code).toBe(0);
    const out = (YAML.parse(repo.read('data/data.xml.dvc')) as { outs: Record<string, unknown>[] }).outs[0]!;
    expect(out).toEqual({ xxh64: expect.stringMatching(/^[0-9a-f]{16}$/), size: XML.length, hash: 'xxh64', path: 'data.xml', desc: 'StackOverflow posts' });
    expect(repo.read('data/.gitignore')).toBe('/data.xml\n');
  });

  it("reads DVC's folder pointers: the .dir hash of DVC 3 (hash: md5) and of DVC 2 (dos2unix text hashing)", async () => {
    // Expected values computed with Python's json.dumps(sort_keys=True) over the sorted {md5, relpath} listing, as dvc-data does.
    const files = { 'imgs/a.txt': 'a\r\nb\r\n', 'imgs/sub/b.bin': 'B', 'imgs/café.txt': 'é', 'imgs/Z.txt': 'z' };
    repo = gitRepo({ ...files, 'imgs.dvc': 'outs:\n- md5: a6945ea3ba6247afbbaa69e39764b722.dir\n  size: 10\n  nfiles: 4\n  hash: md5\n  path: imgs\n' });
    let st = await repo.run(['status', '--json']);
    expect(st.code, st.stderr).toBe(0);
    expect(JSON.parse(st.stdout).tracked).toEqual([]);
    repo.write({ 'imgs.dvc': 'outs:\n- md5: e4d140be3c45a3fdb0176f8187202961.dir\n  path: imgs\n' }); // DVC 2: no hash field
    st = await repo.run(['status', '--json']);
    expect(JSON.parse(st.stdout).tracked).toEqual([]);
    repo.write({ 'imgs/Z.txt': 'zz' });
    st = await repo.run(['status', '--json']);
    expect(JSON.parse(st.stdout).tracked).toEqual([{ file: 'imgs.dvc', path: 'imgs', state: 'modified' }]);
  });

  it('pulls md5-tracked data from the DVC remote it was pushed to (DVC 3 and DVC 2 layouts), verified, then serves it from our cache', async () => {
    const md5 = (b: string | Buffer) => crypto.createHash('md5').update(b).digest('hex');
    const files: Record<string, string> = { 'Z.txt': 'z', 'a.txt': 'a\r\nb\r\n', 'café.txt': 'é', 'sub/b.bin': 'B' };
    // The folder's .dir object, byte for byte as dvc-data writes it (json.dumps, sort_keys, ASCII escapes).
    const listing =
      '[' +
      Object.keys(files)
        .sort()
        .map((f) => `{"md5": "${md5(files[f]!)}", "relpath": "${f.replace('é', '\\u00e9')}"}`)
        .join(', ') +
      ']';
    const dirMd5 = md5(listing) + '.dir';
    expect(dirMd5).toBe('a6945ea3ba6247afbbaa69e39764b722.dir'); // the value Python's json module gives
    const dvcRemote = tmpDir();
    const put = (key: string, body: string) => {
      fs.mkdirSync(path.dirname(path.join(dvcRemote, key)), { recursive: true });
      fs.writeFileSync(path.join(dvcRemote, key), body);
    };
    const xmlMd5 = md5(XML);
    put(`files/md5/${xmlMd5.slice(0, 2)}/${xmlMd5.slice(2)}`, XML); // DVC 3 layout
    put(`${dirMd5.slice(0, 2)}/${dirMd5.slice(2)}`, listing); // DVC 2 layout
    for (const body of Object.values(files)) put(`files/md5/${md5(body).slice(0, 2)}/${md5(body).slice(2)}`, body);
    repo = new TempRepo({
      'pipeline.yaml': PIPELINE,
      'prepare.js': PREPARE,
      'data/data.xml.dvc': `outs:\n- md5: ${xmlMd5}\n  size: ${XML.length}\n  hash: md5\n  path: data.xml\n`,
      'imgs.dvc': `outs:\n- md5: ${dirMd5}\n  nfiles: 4\n  hash: md5\n  path: imgs\n`,
    });
    expect((await repo.run(['remote', 'add', 'dvc', dvcRemote, '--default'])).code).toBe(0);
    expect((await repo.run(['status'])).stdout).toContain('data/data.xml.dvc:\n    not in workspace: data/data.xml');
    const pull = await repo.run(['pull']);
    expect(pull.code, pull.stderr).toBe(0);
    expect(repo.read('data/data.xml')).toBe(XML);
    for (const [f, body] of Object.entries(files)) expect(repo.read(`imgs/${f}`)).toBe(body);
    expect(JSON.parse((await repo.run(['status', '--json'])).stdout).tracked).toEqual([]);
    // now in our cache: checkout puts it back with no remote at all, and gc keeps it
    repo.rm('imgs');
    expect((await repo.run(['checkout'])).stdout).toContain('↺ imgs: restored from the cache');
    expect(JSON.parse((await repo.run(['gc', '--json'])).stdout)).toMatchObject({ objects: 0 });
    expect((await repo.run(['repro'])).code).toBe(0);

    // a corrupted object on the DVC remote is refused, named, and never reaches the workspace
    const other = new TempRepo({ 'pipeline.yaml': 'stages: {}\n', 'data/data.xml.dvc': repo.read('data/data.xml.dvc') });
    try {
      put(`files/md5/${xmlMd5.slice(0, 2)}/${xmlMd5.slice(2)}`, XML.replace('post 3', 'post 4'));
      expect((await other.run(['remote', 'add', 'dvc', dvcRemote, '--default'])).code).toBe(0);
      const bad = await other.run(['pull']);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(
        new RegExp(`✗ data/data.xml: md5 object ${xmlMd5} from remote 'dvc' has md5 [0-9a-f]{32} \\(corrupted or tampered with\\); it was not used`),
      );
      expect(other.exists('data/data.xml')).toBe(false);
    } finally {
      other.cleanup();
    }
  });

  it('refuses bad input by name: a stage output, a missing path, a git-tracked file, a malformed pointer', async () => {
    repo = gitRepo({ 'notes.txt': 'x' });
    await repo.run(['repro']);
    let r = await repo.run(['add', 'data/prepared']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: 'data/prepared' overlaps output 'data/prepared' of stage 'prepare', which pipeline.lock already tracks");
    r = await repo.run(['add', 'data/nope.csv']);
    expect(r.stderr).toContain("error: 'data/nope.csv' does not exist");
    git(repo.dir, 'git add notes.txt');
    r = await repo.run(['add', 'notes.txt']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: 'notes.txt' is tracked by git; it cannot also be cached data");
    r = await repo.run(['add']);
    expect(r.stderr).toContain("error: missing required argument 'paths'");
    repo.write({ 'raw/a.csv': '1', 'raw/b.csv': '2' });
    expect((await repo.run(['add', 'raw'])).code).toBe(0);
    r = await repo.run(['add', 'raw/a.csv']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: 'raw/a.csv' overlaps data tracked by raw.dvc");
    repo.write({ 'notes2.txt': 'n', 'notes2.txt.dvc': 'outs: [\n' });
    r = await repo.run(['add', 'notes2.txt']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^notes2\.txt\.dvc:\d+:\d+: error: invalid YAML/m);
    expect(repo.read('notes2.txt.dvc')).toBe('outs: [\n'); // left as it was
    repo.rm('notes2.txt.dvc');
    expect(repo.exists('notes.txt.dvc')).toBe(false);
    repo.write({ 'raw.csv.dvc': 'outs:\n- md5: nothex\n  path: raw.csv\n' });
    r = await repo.run(['status']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^raw\.csv\.dvc:2:8: error: 'nothex' is not a valid md5 hash \(in raw\.csv\.dvc\)/m);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  });
});
