import fs from 'node:fs';
import path from 'node:path';
import { execSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { TempRepo, expectOneError } from '../helpers.js';
import { parseOverride } from '../../runner/exp/overrides.js';
import { remoteUrlProblem } from '../../runner/remote/config.js';

/**
 * Input that used to crash (exit 70, "internal error") or be silently
 * accepted. Each is now one `error:` line naming the file (with line:col
 * where known), key or path, and exit 2.
 */
let repo: TempRepo;
afterEach(() => repo?.cleanup());

/** A billion-laughs document: each level doubles the aliases; parsing it whole would take ~2^20 nodes. */
function aliasBomb(top: string): string {
  const lines = [`${top}:`, '  a0: &a0 [x, x]'];
  for (let i = 1; i <= 20; i++) lines.push(`  a${i}: &a${i} [*a${i - 1}, *a${i - 1}]`);
  return lines.join('\n') + '\n';
}

const SIMPLE = 'stages:\n  a:\n    cmd: echo v > o.txt\n    outs: [o.txt]\n';

describe('YAML alias bombs', () => {
  it('in pipeline.yaml: one line naming the file, exit 2', async () => {
    repo = new TempRepo({ 'pipeline.yaml': aliasBomb('vars') });
    for (const cmd of [['repro'], ['status'], ['dag']]) expectOneError(await repo.run(cmd), /^pipeline\.yaml: error: invalid YAML: Excessive alias count/);
  });

  it('in params.yaml: one line naming the file, exit 2', async () => {
    repo = new TempRepo({ 'pipeline.yaml': SIMPLE, 'params.yaml': aliasBomb('big') });
    expectOneError(await repo.run(['repro']), /^params\.yaml: error: invalid YAML: Excessive alias count/);
  });
});

describe('a FIFO where a YAML file is read', () => {
  it('params.yaml or .lockstep/config as a FIFO is refused at once instead of blocking', async () => {
    repo = new TempRepo({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: echo\n    params: [lr]\n' });
    execSync('mkfifo params.yaml', { cwd: repo.dir });
    const t0 = Date.now();
    expectOneError(await repo.run(['repro']), /^params\.yaml: error: not a regular file but a FIFO/);
    repo.rm('params.yaml');
    repo.write({ 'params.yaml': 'lr: 1\n' });
    fs.mkdirSync(repo.path('.lockstep'), { recursive: true });
    execSync('mkfifo .lockstep/config', { cwd: repo.dir });
    expectOneError(await repo.run(['status']), /^\.lockstep\/config: error: not a regular file but a FIFO/);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});

describe('pipeline.lock', () => {
  it('a malformed hash value is named with its line and column', async () => {
    repo = new TempRepo({ 'pipeline.yaml': SIMPLE });
    expect((await repo.run(['repro'])).code).toBe(0);
    const lock = repo.read('pipeline.lock').replace(/xxh64: [0-9a-f]{16}/, 'xxh64: ../../etc/passwd');
    repo.write({ 'pipeline.lock': lock });
    const line = lock.split('\n').findIndex((l) => l.includes('../../etc/passwd')) + 1;
    for (const cmd of [['repro'], ['status'], ['checkout'], ['push']]) {
      const err = expectOneError(await repo.run(cmd), /is not an xxh64 hash/, /o\.txt/);
      expect(err).toMatch(new RegExp(`^pipeline\\.lock:${line}:\\d+: error: `));
    }
    expect(repo.read('pipeline.lock')).toBe(lock);
  });

  it('a lock with an unknown schema is refused, not used and rewritten', async () => {
    repo = new TempRepo({ 'pipeline.yaml': SIMPLE });
    expect((await repo.run(['repro'])).code).toBe(0);
    const lock = repo.read('pipeline.lock').replace('schema: "2.0"', 'schema: "9.1"');
    repo.write({ 'pipeline.lock': lock });
    for (const cmd of [['repro', '-f'], ['status']]) {
      expectOneError(await repo.run(cmd), /^pipeline\.lock:1:9: error: schema '9\.1' is not one this version reads/);
    }
    expect(repo.read('pipeline.lock')).toBe(lock);
  });
});

describe('exp run -S values', () => {
  it("a value that is not YAML ('[1,2') is an error; quoting passes the string", async () => {
    repo = new TempRepo({ 'pipeline.yaml': 'stages:\n  t:\n    cmd: echo ${train.lr}\n', 'params.yaml': 'train:\n  lr: 0.1\n' });
    execSync('git init -q && git config user.email t@t && git config user.name t && git add -A && git commit -qm init', { cwd: repo.dir });
    const err = expectOneError(
      await repo.run(['exp', 'run', '-S', 'train.lr=[1,2']),
      /-S train\.lr=\[1,2: '\[1,2' is not a valid value \(Flow sequence must end with a \]\)/,
    );
    expect(err).toBeTruthy();
    expect((await repo.run(['exp', 'run', '-S', 'train.lr=[1,2'])).stderr).toMatch(/hint: quote it to set a string: -S "train\.lr='\[1,2'"/);
    expect(repo.read('params.yaml')).toBe('train:\n  lr: 0.1\n');
    const q = await repo.run(['exp', 'run', '-S', "train.lr='[1,2'", '--queue']);
    expect(q.code, q.stderr).toBe(0);
    const queued = fs.readdirSync(repo.path('.lockstep/exps')).map((f) => fs.readFileSync(path.join(repo.path('.lockstep/exps'), f), 'utf8'));
    expect(queued.join('\n')).toContain('"[1,2"');
  });

  it('parseOverride: YAML values, quoted strings, grids; broken flow values throw', () => {
    expect(parseOverride('a.b=[1, 2]').values).toEqual([[1, 2]]);
    expect(parseOverride("a.b='[1,2'").values).toEqual(['[1,2']);
    expect(parseOverride('a.b=1,x,true').values).toEqual([1, 'x', true]);
    expect(() => parseOverride('a.b=[1,2')).toThrow(/is not a valid value/);
    expect(() => parseOverride('a.b={x: 1')).toThrow(/is not a valid value/);
  });
});

describe('empty foreach and matrix', () => {
  it('matrix: {} is refused with its location instead of running a stage named sweep@', async () => {
    repo = new TempRepo({ 'pipeline.yaml': 'stages:\n  sweep:\n    matrix: {}\n    cmd: echo hi\n' });
    expectOneError(await repo.run(['repro']), /^pipeline\.yaml:3:13: error: 'matrix' of stage 'sweep' is empty/);
    expect(repo.exists('pipeline.lock')).toBe(false);
  });

  it('foreach: [] is refused with its location', async () => {
    repo = new TempRepo({ 'pipeline.yaml': 'stages:\n  shard:\n    foreach: []\n    do:\n      cmd: echo ${item}\n' });
    expectOneError(await repo.run(['repro']), /^pipeline\.yaml:3:14: error: 'foreach' of stage 'shard' is empty/);
  });
});

describe('.lockstep/config that is not a mapping', () => {
  it('binary garbage is refused the same way by every command that reads the config', async () => {
    repo = new TempRepo({ 'pipeline.yaml': SIMPLE });
    expect((await repo.run(['repro'])).code).toBe(0);
    fs.writeFileSync(repo.path('.lockstep/config'), Buffer.from([0x00, 0x01, 0xff, 0xfe, 0x20, 0x67, 0x61, 0x72, 0x62, 0x00, 0x0a]));
    const lines = new Set<string>();
    for (const cmd of [['repro'], ['repro', '--dry'], ['status'], ['checkout'], ['push'], ['pull'], ['gc'], ['remote', 'list'], ['dag']]) {
      lines.add(expectOneError(await repo.run(cmd), /^\.lockstep\/config: error: /));
    }
    expect(lines.size).toBe(1);
  });

  it('an unknown field is named, with the closest one', async () => {
    repo = new TempRepo({ 'pipeline.yaml': SIMPLE, '.lockstep/config': 'allow_symlink: [data]\n' });
    const r = await repo.run(['repro']);
    expectOneError(r, /^\.lockstep\/config:1:1: error: unknown field 'allow_symlink'; did you mean 'allow_symlinked'\?/);
  });
});

describe('remote URLs', () => {
  it('remote add refuses unknown schemes and an s3:// with no bucket, and writes nothing', async () => {
    repo = new TempRepo({ 'pipeline.yaml': SIMPLE });
    for (const [url, want] of [
      ['ftp://host/x', /remote 'o': unsupported URL scheme 'ftp:\/\/'/],
      ['s3://', /remote 'o': 's3:\/\/' has no bucket/],
      ['s3:///prefix', /has no bucket/],
      ['s3://Bad_Bucket/x', /'Bad_Bucket' in 's3:\/\/Bad_Bucket\/x' is not a valid S3 bucket name/],
      ['http://', /'http:\/\/' is not a valid URL|has no host/],
    ] as const) {
      const r = await repo.run(['remote', 'add', 'o', url]);
      expectOneError(r, want);
      expect(r.stderr).toMatch(/hint: a remote is a folder path, file:\/\/\/path, http\(s\):\/\/host\/path \(WebDAV\) or s3:\/\/bucket\/prefix/);
      expect(repo.exists('.lockstep/config')).toBe(false);
    }
    expectOneError(await repo.run(['remote', 'add', 'o', 's3://good-bucket/p', '-o', 'endpoint=notaurl']), /endpoint 'notaurl' is not an http\(s\) URL/);
    expect(repo.exists('.lockstep/config')).toBe(false);
    expect((await repo.run(['remote', 'add', 'o', 's3://good-bucket/prefix'])).code).toBe(0);
  });

  it('a folder remote that is a file stops push with one line, not an error per object', async () => {
    repo = new TempRepo({ 'pipeline.yaml': SIMPLE, afile: 'x\n' });
    expect((await repo.run(['repro'])).code).toBe(0);
    expect((await repo.run(['remote', 'add', 'f', 'afile'])).code).toBe(0);
    expectOneError(await repo.run(['push']), /remote 'f': .*afile is not a folder/);
  });

  it('a bad URL written into the config by hand stops push, pull and status --remote with its location', async () => {
    repo = new TempRepo({ 'pipeline.yaml': SIMPLE, '.lockstep/config': 'remotes:\n  r:\n    url: s3://\n' });
    expect((await repo.run(['repro'])).code).toBe(0);
    for (const cmd of [['push'], ['pull'], ['status', '--remote'], ['remote', 'list']]) {
      expectOneError(await repo.run(cmd), /^\.lockstep\/config:3:10: error: remote 'r': 's3:\/\/' has no bucket/);
    }
  });

  it('remoteUrlProblem: what is accepted', () => {
    for (const ok of [
      '../store',
      '/mnt/share',
      'file:///mnt/share',
      'https://dav.example.com/c',
      'http://127.0.0.1:8080/x',
      's3://my-bucket',
      's3://my.bucket/a/b',
    ]) {
      expect(remoteUrlProblem(ok), ok).toBeUndefined();
    }
    for (const bad of ['', 'ftp://x/y', 'gs://b/p', 's3://', 'file://', 'http://']) expect(remoteUrlProblem(bad), bad).toBeDefined();
  });
});

describe('a stage module that does not compile', () => {
  it('is reported as file:line:col: error:', async () => {
    repo = new TempRepo({
      'pipeline.yaml': 'stages:\n  x:\n    module: stages/x.ts\n    outs: [o.txt]\n',
      'stages/x.ts': 'export default function (ctx: unknown) {\n  const a = ;\n}\n',
    });
    const r = await repo.run(['repro']);
    expect(r.code).toBe(1); // a stage failed (as a shell stage with a syntax error does)
    expect(r.stdout + r.stderr).toMatch(/^\s*stages\/x\.ts:2:13: error: Unexpected ";"$/m);
    expect(r.stdout).toMatch(/✗ x: failed .*: cannot compile stage module: stages\/x\.ts:2:13: Unexpected ";"/);
    expect(r.stderr).not.toMatch(/internal error/);
  });
});
