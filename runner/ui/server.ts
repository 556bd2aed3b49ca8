import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { UserError } from '../errors.js';
import { STATE_DIR } from '../workspace.js';
import { eventsFile, parseEventLines } from '../events.js';
import { ClientError, compareData, experimentsData, pipelineData, registryData, artifactBytes, runsData, transitionVersion } from './api.js';

/**
 * `lockstep ui`: a local web app over the repository. Plain HTML, JS and CSS
 * from runner/ui/static plus vega and vega-lite's browser builds from
 * node_modules: nothing to build, nothing fetched from the internet.
 */

/** The package root: the nearest folder above this file with runner/ui/static (works from runner/ui and dist/bundle). */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'runner', 'ui', 'static', 'index.html'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find runner/ui/static beside the lockstep package');
    dir = up;
  }
}

const PAGES = ['experiments', 'pipeline', 'models'] as const;
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export function buildUiApp(root: string): FastifyInstance {
  const pkg = packageRoot();
  const staticDir = path.join(pkg, 'runner', 'ui', 'static');
  const vendor: Record<string, string> = {
    'vega.min.js': path.join(pkg, 'node_modules', 'vega', 'build', 'vega.min.js'),
    'vega-lite.min.js': path.join(pkg, 'node_modules', 'vega-lite', 'build', 'vega-lite.min.js'),
  };
  // An open page holds a server-sent events stream: closing must end it, not wait for the tab to go away.
  const app = Fastify({ logger: false, forceCloseConnections: true });

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (err instanceof ClientError) return reply.code(err.statusCode).send({ error: err.message });
    if (err instanceof UserError) return reply.code(400).send({ error: err.message });
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.message });
    return reply.code(500).send({ error: `internal error: ${err.message}` });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no such page: ${req.url}` }));

  // Changes come only from this app's own pages: a JSON body (which a cross-site form cannot send) from the same origin.
  app.addHook('preHandler', async (req, reply) => {
    if (req.method === 'GET' || req.method === 'HEAD') return;
    const origin = req.headers.origin;
    let host: string | undefined;
    try {
      host = origin ? new URL(origin).host : undefined;
    } catch {
      host = 'invalid';
    }
    if (origin && host !== req.headers.host) return reply.code(403).send({ error: 'cross-origin request refused' });
    if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) return reply.code(415).send({ error: 'send JSON' });
  });

  const sendFile = (file: string, reply: import('fastify').FastifyReply) =>
    reply
      .type(TYPES[path.extname(file)] ?? 'application/octet-stream')
      .header('cache-control', 'no-cache')
      .send(fs.readFileSync(file));

  app.get('/', (_req, reply) => reply.redirect('/experiments'));
  for (const p of PAGES) app.get(`/${p}`, (_req, reply) => sendFile(path.join(staticDir, 'index.html'), reply));
  app.get<{ Params: { file: string } }>('/static/:file', (req, reply) => {
    const f = req.params.file;
    if (!/^[\w.-]+$/.test(f) || !fs.existsSync(path.join(staticDir, f))) throw new ClientError(404, `no such file: ${f}`);
    return sendFile(path.join(staticDir, f), reply);
  });
  app.get<{ Params: { file: string } }>('/vendor/:file', (req, reply) => {
    const f = vendor[req.params.file];
    if (!f) throw new ClientError(404, `no such file: ${req.params.file}`);
    return reply.type(TYPES['.js']!).header('cache-control', 'max-age=86400').send(fs.readFileSync(f));
  });

  app.get('/api/experiments', async () => experimentsData(root));
  app.get<{ Querystring: { names?: string } }>('/api/compare', async (req) => compareData(root, (req.query.names ?? '').split(',').filter(Boolean)));
  app.get('/api/pipeline', async () => pipelineData(root));
  app.get('/api/runs', async () => runsData(root));
  app.get('/api/registry', async () => registryData(root));
  app.get<{ Params: { hash: string } }>('/api/artifacts/:hash', async (req, reply) => {
    const bytes = await artifactBytes(root, req.params.hash);
    return reply.type('application/octet-stream').header('content-disposition', `attachment; filename="${req.params.hash}"`).send(bytes);
  });
  app.post<{ Params: { version: string }; Body: { to?: unknown } }>('/api/registry/:version/transition', async (req) => {
    const v = Number(req.params.version);
    if (!Number.isInteger(v) || v < 1) throw new ClientError(400, `'${req.params.version}' is not a version number`);
    const to = req.body?.to;
    if (typeof to !== 'string') throw new ClientError(400, "the body needs 'to': the stage to move the version to");
    return { version: await transitionVersion(root, v, to) };
  });

  // Server-sent events: what is in the current run's event log, then each new event as `repro` (any process) writes it.
  const follower = new EventFollower(eventsFile(path.join(root, STATE_DIR)));
  app.get('/api/events', (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (lines: string[], reset: boolean) => {
      if (reset) res.write(`event: reset\ndata: {}\n\n`);
      for (const l of lines) res.write(`data: ${l}\n\n`);
    };
    send(follower.current(), false);
    const off = follower.subscribe(send);
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    streams.add(res);
    req.raw.on('close', () => {
      clearInterval(ping);
      off();
      streams.delete(res);
    });
  });
  const streams = new Set<import('node:http').ServerResponse>();
  app.addHook('preClose', async () => {
    follower.stop();
    for (const s of streams) s.end();
  });
  return app;
}

/** Follows .lockstep/events.jsonl by polling: a new inode or a shorter file is a new run. */
class EventFollower {
  private offset = 0;
  private ino = -1;
  private lines: string[] = [];
  private readonly subs = new Set<(lines: string[], reset: boolean) => void>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly file: string) {
    this.poll();
  }

  current(): string[] {
    return [...this.lines];
  }

  subscribe(f: (lines: string[], reset: boolean) => void): () => void {
    this.subs.add(f);
    this.timer ??= setInterval(() => this.poll(), 150);
    return () => {
      this.subs.delete(f);
      if (!this.subs.size && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.subs.clear();
  }

  private poll(): void {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.file);
    } catch {
      return;
    }
    let reset = false;
    if (st.ino !== this.ino || st.size < this.offset) {
      reset = this.ino !== -1;
      this.ino = st.ino;
      this.offset = 0;
      this.lines = [];
    }
    if (st.size === this.offset && !reset) return;
    const fd = fs.openSync(this.file, 'r');
    let text: string;
    try {
      const buf = Buffer.alloc(st.size - this.offset);
      const n = fs.readSync(fd, buf, 0, buf.length, this.offset);
      text = buf.subarray(0, n).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
    // Only whole lines: a line being written is read on the next poll.
    const end = text.lastIndexOf('\n') + 1;
    this.offset += Buffer.byteLength(text.slice(0, end));
    const fresh = parseEventLines(text.slice(0, end)).map((e) => JSON.stringify(e));
    this.lines.push(...fresh);
    if (fresh.length || reset) for (const s of this.subs) s(fresh, reset);
  }
}
