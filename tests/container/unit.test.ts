import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { TempRepo } from '../helpers.js';
import { loadPipeline } from '../../runner/config/pipeline.js';
import { containerArgs, shellArgv } from '../../runner/container/run.js';
import { resolveEngine } from '../../runner/container/engine.js';
import { describeReason, staleReasons } from '../../runner/staleness.js';
import { fingerprint, lockFingerprint, type Inputs } from '../../runner/observe.js';
import { Lockfile, serialize } from '../../runner/lockfile.js';
import type { UserError } from '../../runner/errors.js';
import type { ContainerSpec } from '../../runner/container/spec.js';

let repo: TempRepo;
afterEach(() => repo?.cleanup());

const spec = (over: Partial<ContainerSpec> = {}): ContainerSpec => ({ network: 'none', env: {}, image: 'debian:bookworm', ...over }) as ContainerSpec;

describe('container: in pipeline.yaml', () => {
  it('parses image and build forms, paths relative to wdir, network none by default', () => {
    repo = new TempRepo({
      'pipeline.yaml': `stages:
  a:
    cmd: echo
    container: {image: "debian:bookworm", env: {A: 1}, cpus: 1.5, memory: 512m}
  b:
    cmd: echo
    wdir: sub
    container: {build: env/Containerfile, args: {V: "2"}, network: host}
`,
    });
    const p = loadPipeline(repo.dir);
    expect(p.stages.get('a')!.container).toEqual({ network: 'none', env: { A: '1' }, cpus: 1.5, memory: '512m', image: 'debian:bookworm' });
    expect(p.stages.get('b')!.container).toEqual({ network: 'host', env: {}, build: { file: 'sub/env/Containerfile', context: 'sub/env', args: { V: '2' } } });
  });

  it.each([
    ['{image: a, build: b}', /'container' needs exactly one of 'image' \(a name\) or 'build'/],
    ['{env: {A: 1}}', /'container' needs exactly one of 'image'/],
    ['{image: a, network: wifi}', /'container\.network' must be one of none, host, bridge, got 'wifi'/],
    ['{image: a, memory: lots}', /'container\.memory' must be a size such as 512m or 2g, got 'lots'/],
    ['{image: a, cpus: -1}', /'container\.cpus' must be a positive number/],
    ['{build: ../Containerfile}', /'container\.build' must be inside the repository/],
    ['{image: a, context: .}', /'container\.context' and 'container\.args' go with 'build', not 'image'/],
    ['{image: a, imag: b}', /unknown field 'imag' in 'container'\n {2}hint: did you mean 'image'\?/],
    ['debian', /'container' must be a mapping with 'image' or 'build'/],
  ])('refuses container: %s with one located line (exit 2)', async (value, message) => {
    repo = new TempRepo({ 'pipeline.yaml': `stages:\n  a:\n    cmd: echo\n    container: ${value}\n` });
    const r = await repo.run(['status']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^pipeline\.yaml:\d+:\d+: error: /);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('container run arguments', () => {
  it('mounts the repository at its own path, runs as the given uid:gid with no network and pins the image', () => {
    const args = containerArgs(
      {
        engine: { name: 'podman', bin: '/usr/bin/podman' },
        spec: spec({ env: { A: '1' }, cpus: 2, memory: '1g' }),
        ref: 'abc',
        root: '/r',
        cwd: '/r/sub',
        readOnly: ['/opt/ls/dist', '/opt/ls/dist/bundle', '/r/inside'],
        env: { LOCKSTEP_STAGE: 's' },
        name: 'n',
        argv: ['true'],
      },
      { uid: 1000, gid: 100 },
    );
    expect(args.join(' ')).toBe(
      'run --rm --init --pull never --name n --network none --user 1000:100 --cpus 2 --memory 1g -v /r:/r -v /opt/ls/dist:/opt/ls/dist:ro -w /r/sub -e A=1 -e LOCKSTEP_STAGE=s abc true',
    );
  });

  it('a list of shell commands stops at the first failure, each command in its own shell', async () => {
    const { execFileSync, spawnSync } = await import('node:child_process');
    expect(execFileSync(shellArgv(['echo a', 'echo b'])[0]!, shellArgv(['echo a', 'echo b']).slice(1), { encoding: 'utf8' })).toBe('a\nb\n');
    const r = spawnSync('sh', shellArgv(['echo a', 'exit 3', 'echo never']).slice(1), { encoding: 'utf8' });
    expect([r.status, r.stdout]).toEqual([3, 'a\n']);
  });
});

describe('the engine', () => {
  it('with neither podman nor docker on PATH: one clear line', () => {
    repo = new TempRepo({ '.lockstep/config': '' });
    expect(() => resolveEngine(repo.path('.lockstep'), { PATH: '/nonexistent' })).toThrow(/container stages need podman or docker, and neither is installed/);
  });

  it('container.engine picks one; a bad value is named with its location', () => {
    repo = new TempRepo({ '.lockstep/config': 'container:\n  engine: podman\n', 'bin/podman': '#!/bin/sh\n', 'bin/docker': '#!/bin/sh\n' });
    fs.chmodSync(repo.path('bin/podman'), 0o755);
    fs.chmodSync(repo.path('bin/docker'), 0o755);
    expect(resolveEngine(repo.path('.lockstep'), { PATH: repo.path('bin') })).toEqual({ name: 'podman', bin: repo.path('bin/podman') });
    const docker = new TempRepo({ '.lockstep/config': 'container:\n  engine: docker\n' });
    const bad = new TempRepo({ '.lockstep/config': 'container:\n  engine: rkt\n' });
    try {
      expect(resolveEngine(docker.path('.lockstep'), { PATH: repo.path('bin') }).name).toBe('docker');
      let err: UserError | undefined;
      try {
        resolveEngine(bad.path('.lockstep'), { PATH: repo.path('bin') });
      } catch (e) {
        err = e as UserError;
      }
      expect(err?.message).toBe("container.engine must be podman or docker, got 'rkt'");
      expect(err?.diagnostics[0]!.location).toEqual({ file: '.lockstep/config', line: 2, column: 11 });
      expect(err?.exitCode).toBe(2);
    } finally {
      docker.cleanup();
      bad.cleanup();
    }
  });
});

describe('the image is an input', () => {
  const inputs = (id: string | undefined, image = 'img'): Inputs => ({ cmd: 'make', deps: [], params: {}, ...(image ? { container: { image, id } } : {}) });
  const lock = (id?: string) => ({ cmd: 'make', deps: [], params: {}, outs: [], ...(id ? { container: { image: 'img', id } } : {}) });

  it('status names the image and both IDs when it changed; moving into or out of a container is a change', () => {
    expect(staleReasons({ lock: lock('sha256:aa'), inputs: inputs('sha256:aa'), outs: [], alwaysChanged: false })).toEqual([]);
    const changed = staleReasons({ lock: lock('sha256:aa'), inputs: inputs('sha256:bb'), outs: [], alwaysChanged: false });
    expect(changed.map(describeReason)).toEqual(['image changed: img sha256:aa → sha256:bb']);
    expect(staleReasons({ lock: lock(), inputs: inputs('sha256:bb'), outs: [], alwaysChanged: false }).map(describeReason)).toEqual(['container added: img']);
    expect(
      staleReasons({ lock: lock('sha256:aa'), inputs: { cmd: 'make', deps: [], params: {} }, outs: [], alwaysChanged: false }).map(describeReason),
    ).toEqual(['container removed: img']);
    expect(staleReasons({ lock: lock('sha256:aa'), inputs: inputs(undefined), outs: [], alwaysChanged: false }).map(describeReason)).toEqual([
      'image missing: img',
    ]);
  });

  it('the fingerprint covers the image; a lock entry and the inputs it records agree; host stages keep their old keys', async () => {
    const a = await fingerprint(inputs('sha256:aa'));
    expect(a).not.toBe(await fingerprint(inputs('sha256:bb')));
    expect(await lockFingerprint(lock('sha256:aa'))).toBe(a);
    expect(await fingerprint(inputs(undefined))).toBeUndefined();
    const host = await fingerprint({ cmd: 'make', deps: [], params: {} });
    expect(host).toBe(await lockFingerprint(lock()));
    expect(host).not.toBe(a);
  });

  it('pipeline.lock records it and reads it back', () => {
    const text = serialize(new Map([['s', lock('sha256:aa')]]), ['s']);
    expect(text).toContain('    container:\n      image: img\n      id: sha256:aa\n');
    expect(Lockfile.parseText(text).get('s')!.container).toEqual({ image: 'img', id: 'sha256:aa' });
    expect(() => Lockfile.parseText('stages:\n  s:\n    cmd: x\n    container: {image: 1}\n')).toThrow(/container of stage 's' lacks image or id/);
  });
});
