/**
 * Base images for the container tests, built here (no image registry is
 * reachable) and kept in podman's store under a tag named by the hash of
 * their recipe, so each is built once per machine and again only when its
 * recipe (or the host's node) changes:
 *   lockstep-test-base:<h>         Debian bookworm minbase from mmdebstrap (~170 MB; 30 s – 3 min)
 *   lockstep-test-node:<h>         FROM scratch: the host's node and the libraries ldd lists (~3 s)
 *   lockstep-test-node-debian:<h>  the base plus the host's node and npm: BASE for the service Containerfile
 * Test files run in parallel, so building takes a lock. Builds are asynchronous: a test worker
 * blocked for minutes loses its connection to vitest.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// Beside this file; or, compiled into dist/ for the bench, in the sources.
const CONTAINERS_CONF = [path.join(import.meta.dirname, 'containers.conf'), path.resolve(import.meta.dirname, '../../../tests/container/containers.conf')].find(
  (f) => fs.existsSync(f),
)!;
// Every podman the tests start (directly or through lockstep) uses it.
process.env.CONTAINERS_CONF = CONTAINERS_CONF;

export function podman(args: string[], opts: { input?: string; cwd?: string } = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('podman', args, { encoding: 'utf8', env: process.env, maxBuffer: 64 << 20, ...opts });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function exists(tag: string): boolean {
  return podman(['image', 'exists', tag]).code === 0;
}

const hash = (...parts: string[]) => createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 12);

/** Build `tag` with `make` unless the store has it; one builder at a time across test processes. */
async function ensure(tag: string, make: (tag: string) => Promise<void>): Promise<string> {
  if (exists(tag)) return tag;
  const lock = path.join(os.tmpdir(), 'lockstep-test-images.lock');
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      fs.writeFileSync(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch {
      // Held: by a live process, wait; by a dead one, take it over.
      const pid = Number(fs.readFileSync(path.join(lock, 'pid'), { encoding: 'utf8', flag: 'a+' }) || 0);
      let alive = pid > 0;
      try {
        if (pid > 0) process.kill(pid, 0);
      } catch {
        alive = false;
      }
      if (!alive && pid > 0) fs.rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    if (!exists(tag)) {
      const t0 = Date.now();
      await make(tag);
      process.stderr.write(`built test image ${tag} in ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
    }
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
  return tag;
}

function aptSources(): string {
  const files = ['/etc/apt/sources.list', ...fs.readdirSync('/etc/apt/sources.list.d').map((f) => `/etc/apt/sources.list.d/${f}`)];
  return files
    .filter((f) => fs.existsSync(f))
    .map((f) => fs.readFileSync(f, 'utf8'))
    .join('\n');
}

const MMDEBSTRAP = 'mmdebstrap --quiet --variant=minbase bookworm -';

/** Debian bookworm, minbase, from the host's configured mirror. */
export function baseImage(): Promise<string> {
  return ensure(`lockstep-test-base:${hash(MMDEBSTRAP, aptSources())}`, buildBase);
}

/** mmdebstrap into `podman import` (also what the bench times as a cold build). */
export async function buildBase(tag: string): Promise<void> {
  await run('bash', ['-o', 'pipefail', '-c', `${MMDEBSTRAP} | podman import --quiet - "$TAG"`], { ...process.env, TAG: tag });
}

const nodeId = () => {
  const st = fs.statSync(process.execPath);
  return `${process.execPath}:${process.version}:${st.size}:${st.mtimeMs}`;
};

/** The files `ldd` says a binary needs, with their symlinks resolved. */
function libsOf(bin: string): string[] {
  const out = execFileSync('ldd', [bin], { encoding: 'utf8' });
  return [...out.matchAll(/(\/\S+) \(0x/g)].map((m) => m[1]!).filter((f) => fs.existsSync(f));
}

/** Node 20 and nothing else: the host's node binary and its shared libraries on an empty image. */
export function nodeImage(): Promise<string> {
  return ensure(`lockstep-test-node:${hash(nodeId(), ...libsOf(process.execPath))}`, buildNode);
}

export async function buildNode(tag: string): Promise<void> {
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-node-image-'));
  try {
    for (const f of [process.execPath, ...libsOf(process.execPath)]) {
      const dest = path.join(ctx, 'rootfs', f);
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.copyFileSync(fs.realpathSync(f), dest);
    }
    fs.mkdirSync(path.join(ctx, 'rootfs', 'tmp'), { recursive: true, mode: 0o1777 });
    fs.writeFileSync(path.join(ctx, 'Containerfile'), `FROM scratch\nCOPY rootfs/ /\nENV PATH=${path.dirname(process.execPath)}\nCMD ["node"]\n`);
    await build(ctx, tag);
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
  }
}

const HOST_CA = '/etc/ssl/certs/ca-certificates.crt';

/** Debian with the host's node and npm: what the service Containerfile's BASE must provide (node, npm, a shell). */
export async function nodeDebianImage(): Promise<string> {
  const base = await baseImage();
  const npmDir = '/usr/lib/node_modules/npm';
  const npmVersion = (JSON.parse(fs.readFileSync(path.join(npmDir, 'package.json'), 'utf8')) as { version: string }).version;
  // This machine's trusted CAs (its egress may re-sign TLS): npm in a build then reaches the registry as the host's does.
  const ca = fs.existsSync(HOST_CA) ? fs.readFileSync(HOST_CA, 'utf8') : '';
  const tag = `lockstep-test-node-debian:${hash(base, nodeId(), npmVersion, ca)}`;
  return ensure(tag, async (tag) => {
    const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-node-debian-'));
    try {
      fs.copyFileSync(process.execPath, path.join(ctx, 'node'));
      fs.cpSync(npmDir, path.join(ctx, 'npm'), { recursive: true });
      fs.writeFileSync(path.join(ctx, 'ca.crt'), ca);
      fs.writeFileSync(
        path.join(ctx, 'Containerfile'),
        `FROM ${base}\nCOPY node /usr/local/bin/node\nCOPY npm /usr/local/lib/node_modules/npm\n` +
          `COPY ca.crt /etc/ssl/certs/lockstep-host-ca.crt\nENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/lockstep-host-ca.crt\n` +
          `RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx && node --version && npm --version\n`,
      );
      await build(ctx, tag);
    } finally {
      fs.rmSync(ctx, { recursive: true, force: true });
    }
  });
}

function build(ctx: string, tag: string): Promise<void> {
  return run('podman', ['build', '--quiet', '-t', tag, ctx]);
}

/** A command to completion without blocking the event loop; its stderr in the error when it fails. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} failed (${code}):\n${err}`))));
  });
}

/** Size of podman's image store, for the report. */
export function storeSize(): string {
  const root = podman(['info', '--format', '{{.Store.GraphRoot}}']).stdout.trim();
  return execFileSync('du', ['-sh', root], { encoding: 'utf8' }).split('\t')[0]!;
}
