import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { TempRepo, statesOf } from '../helpers.js';
import { baseImage, nodeImage, podman } from './images.js';

// Real containers: podman runs each stage; base images come from images.ts (built once per machine).
let base: string;
let node: string;
let repo: TempRepo;
const uid = process.getuid!();
const gid = process.getgid!();

// Containerfiles built here carry this label: their builds are really cold, and they are removed afterwards.
const nonce = `${process.pid}-${Date.now()}`;
const from = () => `FROM ${base}\nLABEL lockstep.test=${nonce}\n`;

beforeAll(async () => {
  base = await baseImage();
  node = await nodeImage();
}, 900_000);
afterAll(() => {
  const ids = podman(['images', '-q', '--filter', `label=lockstep.test=${nonce}`])
    .stdout.split('\n')
    .filter(Boolean);
  if (ids.length) podman(['rmi', '-f', ...new Set(ids)]);
});
afterEach(() => repo?.cleanup());

const stat = (rel: string) => fs.statSync(repo.path(rel));

describe('a stage in a container', () => {
  it('reads deps and writes outs at their own paths, as the invoking uid:gid even when the image says USER 1234', async () => {
    // A dep outside the repository is mounted read-only where it is.
    const ext = `lockstep-ext-${process.pid}.txt`;
    fs.writeFileSync(path.join(os.tmpdir(), ext), 'outside\n');
    onTestFinished(() => fs.rmSync(path.join(os.tmpdir(), ext), { force: true }));
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  make:
    cmd: [id -u > uid.txt, pwd > where.txt, tr a-z A-Z < data/in.txt > upper.txt, cat ../${ext} > ext.txt, "! echo x >> ../${ext}"]
    deps: [data/in.txt, env/Containerfile, ../${ext}]
    outs: [uid.txt, where.txt, upper.txt, ext.txt]
    container: {build: env/Containerfile}
`,
      'env/Containerfile': `${from()}USER 1234\n`,
      'data/in.txt': 'hello\n',
    });
    const r = await repo.run(['repro']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/built lockstep-build:[0-9a-f]{16} from env\/Containerfile/);
    expect(repo.read('upper.txt')).toBe('HELLO\n');
    expect(repo.read('ext.txt')).toBe('outside\n');
    expect(fs.readFileSync(path.join(os.tmpdir(), ext), 'utf8')).toBe('outside\n');
    expect(repo.read('where.txt').trim()).toBe(repo.dir);
    expect(repo.read('uid.txt').trim()).toBe(String(uid));
    for (const f of ['uid.txt', 'where.txt', 'upper.txt']) expect([stat(f).uid, stat(f).gid]).toEqual([uid, gid]);
    expect(repo.read('pipeline.lock')).toMatch(/ {4}container:\n {6}image: build env\/Containerfile\n {6}id: xxh64:[0-9a-f]{16}\n/);
    // Up to date: nothing runs; forced: it runs again, but the unchanged Containerfile is not rebuilt.
    expect((await repo.run(['status'])).stdout).toBe('Pipeline is up to date.');
    const forced = await repo.run(['repro', '-f']);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toContain('✓ make: done');
    expect(forced.stdout).not.toContain('built lockstep-build');
  });

  it('a changed Containerfile (or build arg) makes it stale: status names the image, repro rebuilds and reruns it', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  make:
    cmd: cat /etc/marker > marker.txt
    outs: [marker.txt]
    container: {build: env/Containerfile, args: {V: one}}
  after:
    cmd: cp marker.txt copy.txt
    deps: [marker.txt]
    outs: [copy.txt]
`,
      'env/Containerfile': `${from()}ARG V\nRUN echo "v1 $V" > /etc/marker\n`,
    });
    expect((await repo.run(['repro'])).code).toBe(0);
    expect(repo.read('copy.txt')).toBe('v1 one\n');
    const id1 = /id: (xxh64:[0-9a-f]+)/.exec(repo.read('pipeline.lock'))![1]!;

    repo.write({ 'env/Containerfile': `${from()}ARG V\nRUN echo "v2 $V" > /etc/marker\n` });
    const st = await repo.run(['status']);
    const id2 = /image changed: build env\/Containerfile (xxh64:[0-9a-f]+) → (xxh64:[0-9a-f]+)/.exec(st.stdout);
    expect(id2?.[1]).toBe(id1);
    expect(id2?.[2]).not.toBe(id1);
    expect(st.stdout).toContain('upstream stale: make');
    const r = await repo.run(['repro', '--json']);
    expect(statesOf(r.stdout)).toEqual({ make: 'done', after: 'done' });
    expect(repo.read('copy.txt')).toBe('v2 one\n');
    expect(repo.read('pipeline.lock')).toContain(`id: ${id2![2]}`);

    // Back to the first Containerfile: that environment's results are in the run-cache; nothing is built or run.
    repo.write({ 'env/Containerfile': `${from()}ARG V\nRUN echo "v1 $V" > /etc/marker\n` });
    const back = await repo.run(['repro']);
    expect(back.stdout).toContain('↺ make: restored from run-cache');
    expect(back.stdout).not.toContain('built lockstep-build');
    expect(repo.read('copy.txt')).toBe('v1 one\n');
    repo.write({ 'env/Containerfile': `${from()}ARG V\nRUN echo "v2 $V" > /etc/marker\n` });

    repo.write({ 'pipeline.yaml': repo.read('pipeline.yaml').replace('V: one', 'V: two') });
    expect((await repo.run(['status'])).stdout).toMatch(/make:\n {4}image changed: build env\/Containerfile xxh64:\w+ → xxh64:\w+/);
    expect((await repo.run(['repro'])).code).toBe(0);
    expect(repo.read('copy.txt')).toBe('v2 two\n');
  });

  it('an image name re-tagged to another image makes its stages stale: status shows both sha256 IDs', async () => {
    const tag = `lockstep-test-retag-${process.pid}:1`;
    const other = `lockstep-test-retag-${process.pid}:other`;
    try {
      expect(podman(['tag', base, tag]).code).toBe(0);
      repo = new TempRepo({
        'pipeline.yaml': `stages:\n  s:\n    cmd: cat /etc/debian_version > v.txt\n    outs: [v.txt]\n    container: {image: "${tag}"}\n`,
        Containerfile: `${from()}RUN echo changed > /etc/extra\n`,
      });
      expect((await repo.run(['repro'])).code).toBe(0);
      const baseId = podman(['image', 'inspect', '--format', '{{.Id}}', base]).stdout.trim();
      expect(repo.read('pipeline.lock')).toContain(`id: sha256:${baseId}`);
      expect(podman(['build', '--quiet', '-t', other, repo.dir]).code).toBe(0);
      expect(podman(['tag', other, tag]).code).toBe(0);
      const newId = podman(['image', 'inspect', '--format', '{{.Id}}', tag]).stdout.trim();
      expect((await repo.run(['status'])).stdout).toBe(`s:\n    image changed: ${tag} sha256:${baseId} → sha256:${newId}`);
      expect((await repo.run(['repro'])).stdout).toContain('✓ s: done');
    } finally {
      podman(['rmi', tag, other]);
    }
  });
});

describe('interrupts', () => {
  it('SIGTERM to repro ends the stage inside its container promptly and leaves no container behind', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:\n  slow:\n    cmd: echo started && sleep 60 && touch done.txt\n    outs: [done.txt]\n    container: {image: "${base}"}\n`,
    });
    const child = repo.spawn(['repro']);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const t0 = Date.now();
    while (!out.includes('started') && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 100));
    expect(out).toContain('started');
    const before = Date.now();
    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode).toBe(143);
    expect(Date.now() - before).toBeLessThan(8000);
    expect(repo.exists('done.txt')).toBe(false);
    const left = podman(['ps', '-a', '--format', '{{.Names}}', '--filter', `name=lockstep-${child.pid}-`]).stdout.trim();
    expect(left).toBe('');
  });
});

describe('network', () => {
  let server: net.Server;
  let port: number;
  let received: string[];
  beforeAll(async () => {
    received = [];
    server = net.createServer((s) => s.on('data', (d) => received.push(String(d).trim())));
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(() => server.close());

  const pipeline = (network?: string) => `stages:
  first:
    cmd: echo first > first.txt
    outs: [first.txt]
  call:
    cmd: bash -c 'echo hello-from-stage > /dev/tcp/127.0.0.1/${port}' && touch called.txt
    deps: [first.txt]
    outs: [called.txt]
    container: {image: "${base}"${network ? `, network: ${network}` : ''}}
`;

  it('is off by default: a stage cannot reach a server on the host loopback, fails with one clear line, and nothing else is lost', async () => {
    repo = new TempRepo({ 'pipeline.yaml': pipeline() });
    const r = await repo.run(['repro']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /✗ call: failed in [\d.]+m?s: exit code 1 \(in a container with network: none; if the stage needs the network, set container\.network: host or bridge\)/,
    );
    expect(received).toEqual([]);
    expect(repo.exists('called.txt')).toBe(false);
    // The stage before it keeps its result; the failed one stays stale.
    expect(repo.read('pipeline.lock')).toContain('first:');
    expect(repo.read('pipeline.lock')).not.toContain('call:');
    expect((await repo.run(['status'])).stdout).toBe('call:\n    never run');
  });

  it('network: host reaches it (so the test above can fail)', async () => {
    repo = new TempRepo({ 'pipeline.yaml': pipeline('host') });
    const r = await repo.run(['repro']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(received).toContain('hello-from-stage');
  });
});

describe('a module stage in a container', () => {
  it('runs its module host with the node of the image, params and paths as on the host, outputs owned by the invoking uid', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  probe:
    module: stages/probe.ts
    deps: [stages/probe.ts, data/in.txt]
    params: [probe.n]
    outs: [out/probe.json]
    container: {image: "${node}", env: {FROM_SPEC: yes}}
  broken:
    module: stages/broken.ts
    container: {image: "${node}"}
`,
      'params.yaml': 'probe:\n  n: 7\n',
      'data/in.txt': 'abc',
      'stages/probe.ts': `import fs from 'node:fs';
import type { StageContext } from './contract.js';
export default async function (ctx: StageContext): Promise<void> {
  const input: string = fs.readFileSync(ctx.resolve(ctx.deps[1]!), 'utf8');
  const facts = { n: ctx.params.probe.n, input, node: process.version, debianUserland: fs.existsSync('/etc/debian_version'), env: process.env.FROM_SPEC, cwd: process.cwd() };
  fs.writeFileSync(ctx.resolve(ctx.outs[0]!), JSON.stringify(facts));
  ctx.log('probe ran in ' + process.cwd());
}
`,
      'stages/contract.ts': 'export interface StageContext { params: any; deps: string[]; outs: string[]; resolve(p: string): string; log(m: string): void }\n',
      'stages/broken.ts': `export default function () {\n  throw new Error('broken on purpose');\n}\n`,
    });
    const r = await repo.run(['repro', '-k']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`probe ran in ${repo.dir}`);
    expect(r.stdout).toContain('✓ probe: done');
    // The module's own failure, with its line, as on the host.
    expect(r.stdout).toMatch(/error: broken on purpose\n\s+at .*broken\.ts:2:\d+/);
    expect(r.stdout).toMatch(/✗ broken: failed/);
    // The image has no Debian userland (the host has): it ran inside; and with the image's node.
    expect(JSON.parse(repo.read('out/probe.json'))).toEqual({ n: 7, input: 'abc', node: process.version, debianUserland: false, env: 'yes', cwd: repo.dir });
    expect(fs.existsSync('/etc/debian_version')).toBe(true);
    expect(stat('out/probe.json').uid).toBe(uid);
  });
});

describe('bad input', () => {
  it('an image that does not exist: one clear line, the stage failed, the others ran (-k) and kept their results', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  ok:
    cmd: echo ok > ok.txt
    outs: [ok.txt]
  ghost:
    cmd: echo never > ghost.txt
    outs: [ghost.txt]
    container: {image: lockstep-test-no-such-image:1}
`,
    });
    expect((await repo.run(['status'])).stdout).toContain('ghost:\n    never run\n    image missing: lockstep-test-no-such-image:1');
    const r = await repo.run(['repro', '-k']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      "✗ ghost: failed in 0ms: image 'lockstep-test-no-such-image:1' does not exist in podman's image store (Lockstep never pulls: build, pull or load it first)",
    );
    expect(repo.read('ok.txt')).toBe('ok\n');
    expect(repo.read('pipeline.lock')).toContain('ok:');
  });

  it('a Containerfile that fails to build: its log is shown, the stage failed, nothing else lost', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  ok:
    cmd: echo ok > ok.txt
    outs: [ok.txt]
  bad:
    cmd: echo never > bad.txt
    outs: [bad.txt]
    container: {build: bad/Containerfile}
`,
      'bad/Containerfile': `${from()}RUN echo this-is-the-build-log && exit 3\n`,
    });
    const r = await repo.run(['repro', '-k']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('this-is-the-build-log');
    expect(r.stdout).toMatch(/✗ bad: failed in [\d.]+m?s: Containerfile 'bad\/Containerfile' failed to build \(podman build exit code \d+; its log is above\)/);
    expect(repo.read('pipeline.lock')).toContain('ok:');
    expect(repo.exists('bad.txt')).toBe(false);
    expect(podman(['images', '--format', '{{.Repository}}:{{.Tag}}']).stdout).not.toContain(
      /id: xxh64:(\w+)/.exec(repo.read('pipeline.lock'))?.[1] ?? 'no-such',
    );
  });

  it('no container engine: exit 2 before anything runs, one line', async () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  host:
    cmd: echo host > host.txt
    outs: [host.txt]
  boxed:
    cmd: echo boxed > boxed.txt
    outs: [boxed.txt]
    container: {image: "${base}"}
`,
    });
    const r = await repo.run(['repro'], { env: { PATH: '/nonexistent' } });
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('error: container stages need podman or docker, and neither is installed (not on PATH)');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(repo.exists('host.txt')).toBe(false);
    expect(repo.exists('pipeline.lock')).toBe(false);
  });
});
