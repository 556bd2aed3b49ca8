import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';

/** Real servers on loopback for the remote tests and benchmarks: nginx with WebDAV, and an S3-compatible server. */

/** The package root (this file runs from bench/ under vitest and from dist/bench/ when built). */
function packageRoot(): string {
  for (let dir = import.meta.dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error('package.json not found above ' + import.meta.dirname);
  }
}

export interface RunningServer {
  readonly url: string;
  /** Where the server keeps what it stores (to corrupt an object on purpose). */
  readonly dataDir: string;
  readonly env: Record<string, string>;
  /** For S3: the endpoint to configure. */
  readonly endpoint?: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.end();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`server did not listen on ${port}:\n${log()}`);
}

function stopper(child: ChildProcess, dir: string): () => Promise<void> {
  return async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
}

const DAV_EXT = '/usr/lib/nginx/modules/ngx_http_dav_ext_module.so';

/** nginx (Debian's nginx-light + libnginx-mod-http-dav-ext, installed by scripts/system-packages.sh, npm test's first step) serving WebDAV from a temp folder. */
export async function startNginxDav(): Promise<RunningServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-nginx-'));
  const www = path.join(dir, 'www');
  fs.mkdirSync(path.join(www, 'cache'), { recursive: true });
  const port = await freePort();
  const isRoot = process.getuid?.() === 0;
  const conf = `
${fs.existsSync(DAV_EXT) ? `load_module ${DAV_EXT};` : ''}
${isRoot ? 'user root;' : ''}
daemon off;
worker_processes 2;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  client_max_body_size 0;
  server {
    listen 127.0.0.1:${port};
    root ${www};
    location / {
      dav_methods PUT DELETE MKCOL COPY MOVE;
      ${fs.existsSync(DAV_EXT) ? 'dav_ext_methods PROPFIND OPTIONS;' : ''}
      create_full_put_path on;
      dav_access user:rw group:rw all:r;
    }
  }
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const child = spawn('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  await waitForPort(port, child, () => stderr + (fs.existsSync(path.join(dir, 'error.log')) ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8') : ''));
  return { url: `http://127.0.0.1:${port}/cache`, dataDir: path.join(www, 'cache'), env: {}, stop: stopper(child, dir) };
}

/** s3rver (an S3-compatible server in Node) on loopback, in its own process, with one bucket. */
export async function startS3(): Promise<RunningServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-s3-'));
  const port = await freePort();
  const script = `
    const S3rver = require('s3rver');
    new S3rver({ port: ${port}, address: '127.0.0.1', directory: ${JSON.stringify(dir)}, silent: true,
      configureBuckets: [{ name: 'lockstep' }] }).run().then(() => console.log('ready'), (e) => { console.error(e); process.exit(1); });
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'], cwd: packageRoot() });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  await waitForPort(port, child, () => log);
  return {
    url: 's3://lockstep/cache',
    dataDir: path.join(dir, 'lockstep'),
    env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' },
    endpoint: `http://127.0.0.1:${port}`,
    stop: stopper(child, dir),
  };
}
