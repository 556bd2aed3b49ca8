import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TempRepo, filesUnder, statesOf } from '../helpers.js';
import { hashFile } from '../../runner/hash/xxhash.js';
import { freePort, startNginxDav, startS3, type RunningServer } from '../../bench/servers.js';

// A stage with a directory output (manifest + files) and a larger file output.
const PIPELINE = `stages:
  prepare:
    cmd: mkdir -p data && node -e "const fs=require('fs'); for (let i=0;i<40;i++) fs.writeFileSync('data/part'+i+'.txt', 'row '+i+' seed \${seed}\\n'.repeat(50))"
    params: [seed]
    outs: [data]
  train:
    cmd: >-
      echo run >> runs.txt &&
      node -e "const fs=require('fs'); const b=Buffer.alloc(\${size}); for (let i=0;i<b.length;i++) b[i]=(i*31+\${seed})&255; fs.writeFileSync('model.bin', b)"
    deps: [data]
    params: [seed, size]
    outs: [model.bin]
`;

type Kind = 'dir' | 'http' | 's3';

interface Remote {
  readonly config: string;
  readonly env: Record<string, string>;
  /** Folder where the server keeps the object stored under `key`. */
  objectFile(key: string): string;
  /** Every stored file under the remote's root, as [path, content] (temp names included). */
  storedFiles(): string[];
  stop(): Promise<void>;
}

async function startRemote(kind: Kind): Promise<Remote> {
  if (kind === 'dir') {
    const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'lockstep-remote-'));
    return {
      config: `remotes:\n  origin:\n    url: ${dir}\n`,
      env: {},
      objectFile: (key) => path.join(dir, key),
      storedFiles: () => filesUnder(dir),
      stop: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  }
  const server: RunningServer = kind === 'http' ? await startNginxDav() : await startS3();
  const config =
    kind === 'http' ? `remotes:\n  origin:\n    url: ${server.url}\n` : `remotes:\n  origin:\n    url: ${server.url}\n    endpoint: ${server.endpoint}\n`;
  // nginx stores keys as plain files; s3rver as <key>._S3rver_object beside its metadata.
  const objectFile = (key: string) => (kind === 'http' ? path.join(server.dataDir, key) : path.join(server.dataDir, 'cache', `${key}._S3rver_object`));
  return { config, env: server.env, objectFile, storedFiles: () => filesUnder(server.dataDir), stop: () => server.stop() };
}

function clone(from: TempRepo | undefined, config: string, params = 'seed: 1\nsize: 200000\n'): TempRepo {
  // What git would carry: the pipeline, params, lock and committed config; never .lockstep/cache.
  const files: Record<string, string> = { 'pipeline.yaml': PIPELINE, 'params.yaml': params, '.lockstep/config': config };
  if (from?.exists('pipeline.lock')) files['pipeline.lock'] = from.read('pipeline.lock');
  return new TempRepo(files);
}

const objectKeys = (files: string[]) => files.filter((f) => f.includes('files/xxh64/'));

/** Every object file stored on the remote (or locally) holds exactly the content its name says. */
async function assertObjectsIntact(files: string[]): Promise<void> {
  for (const f of files) {
    const m = /files\/xxh64\/([0-9a-f]{2})\/([0-9a-f]{14})(?:\._S3rver_object)?$/.exec(f);
    if (!m) continue; // manifests (.dir) are checked by reading; temp files are not objects
    expect((await hashFile(f)).hash, f).toBe(m[1]! + m[2]!);
  }
}

for (const kind of ['dir', 'http', 's3'] as const) {
  describe(`${kind} remote`, () => {
    let remote: Remote;
    beforeAll(async () => {
      remote = await startRemote(kind);
    }, 30_000);
    afterAll(async () => remote?.stop());

    it('plays CI: A runs and pushes; a fresh clone B with an empty cache runs repro --pull, executes nothing, and gets byte-identical outputs', async () => {
      const a = clone(undefined, remote.config);
      const b = clone(undefined, remote.config);
      try {
        expect((await a.run(['repro'], { env: remote.env })).code).toBe(0);
        const pushed = await a.run(['push'], { env: remote.env });
        expect(pushed.code, pushed.stderr).toBe(0);
        expect(pushed.stdout).toMatch(/pushed 4[0-9] objects .* to 'origin'/);
        const again = await a.run(['push'], { env: remote.env });
        expect(again.stdout).toMatch(/pushed 0 objects .*; 4[0-9] already there/);

        b.write({ 'pipeline.lock': a.read('pipeline.lock') });
        const before = await b.run(['status', '--remote'], { env: remote.env });
        expect(before.stdout).toMatch(/prepare: data: missing from the local cache/);
        const r = await b.run(['repro', '--pull', '--json'], { env: remote.env });
        expect(r.code, r.stderr).toBe(0);
        expect(statesOf(r.stdout)).toEqual({ prepare: 'restored', train: 'restored' });
        expect(b.exists('runs.txt')).toBe(false); // nothing executed
        expect(fs.readFileSync(b.path('model.bin')).equals(fs.readFileSync(a.path('model.bin')))).toBe(true);
        for (let i = 0; i < 40; i++) expect(b.read(`data/part${i}.txt`)).toBe(a.read(`data/part${i}.txt`));
        expect((await b.run(['status'])).stdout).toContain('up to date');
        expect((await b.run(['status', '--remote'], { env: remote.env })).stdout).toMatch(/All 2 cached outputs are both in the local cache and on 'origin'/);
      } finally {
        a.cleanup();
        b.cleanup();
      }
    }, 60_000);

    it('run-cache entries travel too: B restores a params combination only A has run', async () => {
      const a = clone(undefined, remote.config, 'seed: 5\nsize: 1000\n');
      const b = clone(undefined, remote.config, 'seed: 5\nsize: 1000\n');
      try {
        await a.run(['repro']);
        a.write({ 'params.yaml': 'seed: 5\nsize: 2000\n' });
        await a.run(['repro']);
        expect((await a.run(['push'], { env: remote.env })).code).toBe(0);
        // B has no lock at all: only the run-cache can tell it these params were run before.
        const r = await b.run(['repro', '--pull', '--json'], { env: remote.env });
        expect(r.code, r.stderr).toBe(0);
        expect(statesOf(r.stdout)).toEqual({ prepare: 'restored', train: 'restored' });
        expect(b.exists('runs.txt')).toBe(false);
      } finally {
        a.cleanup();
        b.cleanup();
      }
    }, 60_000);

    it('a corrupted object on the remote is refused by pull, named, and never reaches the workspace', async () => {
      let original: { file: string; bytes: Buffer } | undefined;
      const a = clone(undefined, remote.config, 'seed: 9\nsize: 3000\n');
      const b = clone(undefined, remote.config, 'seed: 9\nsize: 3000\n');
      try {
        await a.run(['repro']);
        expect((await a.run(['push'], { env: remote.env })).code).toBe(0);
        const lock = a.read('pipeline.lock');
        const modelHash = /path: model\.bin\n\s+xxh64: ([0-9a-f]{16})/.exec(lock)![1]!;
        const key = `files/xxh64/${modelHash.slice(0, 2)}/${modelHash.slice(2)}`;
        const stored = remote.objectFile(key);
        expect(fs.existsSync(stored), stored).toBe(true);
        original = { file: stored, bytes: fs.readFileSync(stored) };
        fs.writeFileSync(stored, 'tampered content of the same object name');

        b.write({ 'pipeline.lock': lock });
        const r = await b.run(['pull'], { env: remote.env });
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`model.bin: object ${modelHash} from remote 'origin' has content hash`);
        expect(r.stderr).toMatch(/corrupted or tampered with\); it was not used/);
        expect(b.exists('model.bin')).toBe(false);
        expect(fs.existsSync(b.path(`.lockstep/cache/${key}`))).toBe(false);
        expect(b.exists('data/part0.txt')).toBe(true); // the intact output still arrived
        // repro --pull does not use it either: it warns and runs the stage.
        const rr = await b.run(['repro', '--pull'], { env: remote.env });
        expect(rr.code).toBe(0);
        expect(rr.stderr).toMatch(/tampered/);
        expect(rr.stdout).toMatch(/train: done/);
      } finally {
        if (original) fs.writeFileSync(original.file, original.bytes); // the remote is shared by the next tests
        a.cleanup();
        b.cleanup();
      }
    }, 60_000);

    it('kill -9 of push and of pull halfway: nothing partial is visible, and running them again completes', async () => {
      const params = 'seed: 3\nsize: 48000000\n';
      const a = clone(undefined, remote.config, params);
      const b = clone(undefined, remote.config, params);
      try {
        expect((await a.run(['repro'])).code).toBe(0);
        const before = objectKeys(remote.storedFiles()).length;
        const push = a.spawn(['push', '-j', '1'], { env: remote.env });
        // Kill once some objects are up but not all.
        for (let i = 0; i < 400 && objectKeys(remote.storedFiles()).length < before + 3; i++) await new Promise((r) => setTimeout(r, 10));
        push.kill('SIGKILL');
        expect((await push).signal).toBe('SIGKILL'); // it was still running: killed halfway
        const partial = objectKeys(remote.storedFiles()).length;
        expect(partial).toBeGreaterThan(before);
        await assertObjectsIntact(remote.storedFiles());
        const again = await a.run(['push'], { env: remote.env });
        expect(again.code, again.stderr).toBe(0);
        await assertObjectsIntact(remote.storedFiles());

        b.write({ 'pipeline.lock': a.read('pipeline.lock') });
        const pull = b.spawn(['pull', '-j', '1'], { env: remote.env });
        const local = () => objectKeys(filesUnder(b.path('.lockstep/cache'))).length;
        for (let i = 0; i < 400 && local() < 3; i++) await new Promise((r) => setTimeout(r, 10));
        pull.kill('SIGKILL');
        expect((await pull).signal).toBe('SIGKILL');
        await assertObjectsIntact(filesUnder(b.path('.lockstep/cache')));
        const done = await b.run(['pull'], { env: remote.env });
        expect(done.code, done.stderr).toBe(0);
        expect(fs.readFileSync(b.path('model.bin')).equals(fs.readFileSync(a.path('model.bin')))).toBe(true);
        expect((await b.run(['status'])).stdout).toContain('up to date');
      } finally {
        a.cleanup();
        b.cleanup();
      }
    }, 120_000);
  });
}

describe('remote configuration', () => {
  it('remote add/list/default/remove through the CLI, with clear errors', async () => {
    const r = new TempRepo({ 'pipeline.yaml': PIPELINE, 'params.yaml': 'seed: 1\nsize: 10\n' });
    try {
      expect((await r.run(['remote', 'add', 'origin', '../store', '--default'])).code).toBe(0);
      expect((await r.run(['remote', 'add', 'ci', 's3://bucket/prefix', '-o', 'region=eu-west-1', '--local'])).code).toBe(0);
      expect(r.read('.lockstep/config')).toContain('url: ../store');
      expect(r.read('.lockstep/config.local')).toContain('region: eu-west-1');
      const list = await r.run(['remote', 'list']);
      expect(list.stdout).toMatch(/origin\t\.\.\/store\t\(default\)\nci\ts3:\/\/bucket\/prefix/);
      expect((await r.run(['remote', 'default', 'nope'])).stderr).toMatch(/no remote named 'nope'/);
      expect((await r.run(['remote', 'add', 'x', 'y', '-o', 'jobs=zero'])).stderr).toMatch(/jobs must be a whole number/);
      expect((await r.run(['push', '-r', 'orgin'])).stderr).toMatch(/no remote named 'orgin'.*did you mean 'origin'/s);
      expect((await r.run(['remote', 'remove', 'origin'])).code).toBe(0);
      expect((await r.run(['remote', 'remove', 'ci'])).code).toBe(0);
      const none = await r.run(['push']);
      expect(none.code).toBe(2);
      expect(none.stderr).toMatch(/no remote is configured.*lockstep remote add NAME URL/s);
      r.write({ '.lockstep/config': 'remotes:\n  origin:\n    url: ../store\n    jbos: 4\n' });
      expect((await r.run(['push'])).stderr).toMatch(/\.lockstep\/config:4:5: .*unknown field 'jbos' in remote 'origin'; did you mean 'jobs'\?/);
      r.write({ '.lockstep/config': 'remotes:\n  origin:\n    url: ../store\n    read_only: true\n' });
      await r.run(['repro']);
      const ro = await r.run(['push']);
      expect(ro.code).toBe(2);
      expect(ro.stderr).toMatch(/remote 'origin' is read-only/);
    } finally {
      r.cleanup();
    }
  });

  it('an unreachable remote is a clear one-line error for push, pull and status --remote; repro --pull warns once and runs', async () => {
    const port = await freePort(); // nothing listens there
    const r = new TempRepo({
      'pipeline.yaml': PIPELINE,
      'params.yaml': 'seed: 1\nsize: 10\n',
      '.lockstep/config': `remotes:\n  origin:\n    url: http://127.0.0.1:${port}/cache\n`,
    });
    try {
      expect((await r.run(['repro'])).code).toBe(0);
      for (const cmd of [['push'], ['pull'], ['status', '--remote']]) {
        const x = await r.run(cmd);
        expect(x.code, cmd.join(' ')).toBe(1);
        expect(x.stderr).toMatch(new RegExp(`^error: remote 'origin' \\(http://127\\.0\\.0\\.1:${port}/cache/\\) cannot be reached: ECONNREFUSED$`, 'm'));
        expect(x.stderr).not.toMatch(/internal error|\n\s+at /);
      }
      r.write({ 'params.yaml': 'seed: 2\nsize: 10\n' });
      const repro = await r.run(['repro', '--pull']);
      expect(repro.code, repro.stderr).toBe(0);
      expect(repro.stderr.match(/cannot be reached/g)).toHaveLength(1);
      expect(repro.stdout).toMatch(/prepare: done/);
    } finally {
      r.cleanup();
    }
  }, 60_000);
});

// Issue 11 follow-up: `pull` brings every run-cache entry on the remote but only the objects the lock needs.
describe('run-cache entries pulled without their objects (folder remote)', () => {
  let remote: Remote;
  beforeAll(async () => {
    remote = await startRemote('dir');
  });
  afterAll(async () => remote?.stop());

  const snapshot = () => new Map(remote.storedFiles().map((f) => [f, fs.readFileSync(f).toString('base64')]));
  const modelHash = (repo: TempRepo) => /path: model\.bin\n\s+xxh64: ([0-9a-f]{16})/.exec(repo.read('pipeline.lock'))![1]!;

  it('A runs three params values and pushes; B pulls into an empty cache and pushes: no failure, nothing uploaded or deleted; repro uses such an entry only with --pull', async () => {
    const a = clone(undefined, remote.config, 'seed: 5\nsize: 1000\n');
    let b: TempRepo | undefined;
    try {
      for (const size of [1000, 2000, 3000]) {
        a.write({ 'params.yaml': `seed: 5\nsize: ${size}\n` });
        expect((await a.run(['repro'])).code).toBe(0);
      }
      const pushedA = await a.run(['push']);
      expect(pushedA.code, pushedA.stderr).toBe(0);
      const onRemote = snapshot();
      expect([...onRemote.keys()].filter((f) => f.includes('/runs/'))).toHaveLength(4); // prepare, train × 3

      b = clone(a, remote.config, 'seed: 5\nsize: 3000\n');
      const pulled = await b.run(['pull']);
      expect(pulled.code, pulled.stderr).toBe(0);
      expect(filesUnder(b.path('.lockstep/cache/runs'))).toHaveLength(4);

      const pushed = await b.run(['push']);
      expect(pushed.code, pushed.stderr + pushed.stdout).toBe(0);
      expect(pushed.stderr).toBe('');
      expect(pushed.stdout).toMatch(/pushed 0 objects/);
      expect(snapshot()).toEqual(onRemote); // nothing uploaded, nothing deleted

      // Without --pull an entry whose objects are not here is passed over: the stage runs, quietly.
      b.write({ 'params.yaml': 'seed: 5\nsize: 1000\n' });
      const ran = await b.run(['repro', '--json']);
      expect(ran.code, ran.stderr).toBe(0);
      expect(statesOf(ran.stdout).train).toBe('done');
      expect(ran.stderr).not.toMatch(/error|warn|✗/i);
      expect(b.read('runs.txt')).toBe('run\n');

      // With --pull it fetches the entry's objects and restores instead of running.
      b.write({ 'params.yaml': 'seed: 5\nsize: 2000\n' });
      const restored = await b.run(['repro', '--pull', '--json']);
      expect(restored.code, restored.stderr).toBe(0);
      expect(statesOf(restored.stdout).train).toBe('restored');
      expect(b.read('runs.txt')).toBe('run\n');
      expect(fs.statSync(b.path('model.bin')).size).toBe(2000);

      const again = await b.run(['push']);
      expect(again.code, again.stderr).toBe(0);
      expect(snapshot()).toEqual(onRemote);
    } finally {
      a.cleanup();
      b?.cleanup();
    }
  }, 60_000);

  it('an entry whose objects neither the local cache nor the remote has is not pushed, and push does not fail for it', async () => {
    const b = clone(undefined, remote.config, 'seed: 6\nsize: 4000\n');
    try {
      expect((await b.run(['repro'])).code).toBe(0);
      const lost = modelHash(b);
      b.write({ 'params.yaml': 'seed: 6\nsize: 5000\n' });
      expect((await b.run(['repro'])).code).toBe(0);
      b.rm(`.lockstep/cache/files/xxh64/${lost.slice(0, 2)}/${lost.slice(2)}`);
      const entriesBefore = remote.storedFiles().filter((f) => f.includes('/runs/')).length;
      const pushed = await b.run(['push']);
      expect(pushed.code, pushed.stderr + pushed.stdout).toBe(0);
      expect(pushed.stderr).toBe('');
      expect(pushed.stdout).toMatch(/run-cache entry [0-9a-f]{16} \(train\) not pushed: .*neither in the local cache nor on 'origin'/);
      expect(fs.existsSync(remote.objectFile(`files/xxh64/${lost.slice(0, 2)}/${lost.slice(2)}`))).toBe(false);
      // prepare's entry and the size 5000 train entry went up; the size 4000 one did not.
      expect(remote.storedFiles().filter((f) => f.includes('/runs/')).length).toBe(entriesBefore + 2);
      const json = await b.run(['push', '--json']);
      expect(json.code, json.stderr).toBe(0);
      expect(JSON.parse(json.stdout)).toMatchObject({
        ok: true,
        transferred: 0,
        entriesNotPushed: [{ fingerprint: expect.stringMatching(/^[0-9a-f]{16}$/), stage: 'train' }],
      });
    } finally {
      b.cleanup();
    }
  }, 60_000);
});
