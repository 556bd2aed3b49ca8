import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Stage } from './stage.js';
import type { ParamsFiles } from './config/params.js';
import { setKey, type ParamsTree } from './config/params.js';
import { paramsValues } from './observe.js';
import { buildModule } from './module-build.js';
import { writeFileAtomic } from './fs-util.js';

export type RunResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: string };

export interface RunOptions {
  readonly root: string;
  readonly stateDir: string;
  readonly params: ParamsFiles;
  readonly onLine: (line: string, stream: 'stdout' | 'stderr') => void;
  /** A module stage took the pre-started host (the caller may start the next one). */
  readonly onHostTaken?: () => void;
}

// Beside this file: module-host.mjs in the bundle, module-host.js in plain tsc output.
const HOST = ['module-host.mjs', 'module-host.js']
  .map((f) => path.join(path.dirname(fileURLToPath(import.meta.url)), f))
  .find((f) => fs.existsSync(f))!;
const KILL_GRACE_MS = 3000;

/** Secrets Lockstep itself uses and stage code must never see (a stage could sign forged run-cache entries with the key). */
const WITHHELD = ['LOCKSTEP_RUN_CACHE_KEY'];

/** The environment stage processes inherit: ours, minus the withheld secrets. */
function stageEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of WITHHELD) delete env[k];
  return env;
}

/** Children still running, so an interrupt can end every one of them (and their process groups). */
const live = new Set<ChildProcess>();

export function killAll(signal: NodeJS.Signals = 'SIGTERM'): void {
  for (const child of live) {
    const pid = child.pid;
    if (pid === undefined) continue;
    try {
      process.kill(-pid, signal); // the whole group: shells start grandchildren
    } catch {
      child.kill(signal);
    }
    setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, KILL_GRACE_MS).unref();
  }
}

/**
 * Module hosts started ahead of time: node takes ~70 ms to start, so the
 * executor starts hosts while it hashes inputs and while stages run, and a
 * module stage gets a host that is already up. Up to two wait at once, so a
 * fast stage's successor is not left waiting for a boot. Unused ones are ended
 * with the run.
 */
const warm: ChildProcess[] = [];

export function prewarmModuleHosts(root: string, wanted: number): void {
  for (let i = warm.filter((w) => w.exitCode === null).length; i < Math.min(wanted, 2); i++) {
    const w = spawn(process.execPath, ['--enable-source-maps', HOST, '--wait'], { cwd: root, env: stageEnv(), detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    w.on('error', () => undefined); // a failed spawn just means a stage starts its own host
    w.stdin!.on('error', () => undefined);
    live.add(w);
    w.once('exit', () => live.delete(w));
    warm.push(w);
  }
}

export function discardWarmHosts(): void {
  for (const w of warm.splice(0)) {
    live.delete(w);
    // Closing its stdin ends the host by itself; dropping our ends of its pipes means we need not wait for that.
    w.stdin?.destroy();
    w.stdout?.destroy();
    w.stderr?.destroy();
    w.unref();
  }
}

function takeWarmHost(): ChildProcess | undefined {
  for (let w = warm.shift(); w; w = warm.shift()) if (w.exitCode === null && w.pid !== undefined && !w.killed) return w;
  return undefined;
}

export async function runStage(stage: Stage, opts: RunOptions): Promise<RunResult> {
  const cwd = path.join(opts.root, stage.wdir);
  const env = { LOCKSTEP_STAGE: stage.name, LOCKSTEP_ROOT: opts.root };
  if (stage.command.kind === 'shell') {
    // execa is loaded only when a shell stage runs; module-only runs skip its start-up cost.
    const { execa } = await import('execa');
    for (const cmd of stage.command.commands) {
      const r = await spawnLogged(execa(cmd, { shell: true, cwd, env: stageEnv(env), extendEnv: false, detached: true, stdin: 'ignore', buffer: false, reject: false }), opts);
      if (!r.ok) return r;
    }
    return { ok: true };
  }
  const compiled = await buildModule(opts.root, opts.stateDir, stage.command.module);
  const ctxFile = path.join(opts.stateDir, 'tmp', `ctx-${process.pid}-${stage.name.replace(/[^\w.-]/g, '_')}.json`);
  const nested: ParamsTree = {};
  for (const values of Object.values(paramsValues(stage, opts.params))) {
    for (const [k, v] of Object.entries(values)) setKey(nested, k, v);
  }
  const rel = (p: string) => path.relative(cwd, path.join(opts.root, p)) || '.';
  writeFileAtomic(
    ctxFile,
    JSON.stringify({
      stage: stage.name,
      root: opts.root,
      wdir: cwd,
      module: stage.command.module,
      params: nested,
      deps: stage.deps.map((d) => rel(d.path)),
      outs: stage.outs.map((o) => rel(o.path)),
      metrics: stage.outs.filter((o) => o.kind === 'metric').map((o) => rel(o.path)),
      plots: stage.outs.filter((o) => o.kind === 'plot').map((o) => rel(o.path)),
    }),
    { durable: false }, // read once by the child, removed right after
  );
  try {
    const host = takeWarmHost();
    if (host) {
      live.delete(host);
      host.stdin!.end(JSON.stringify({ compiled, ctxFile, cwd, env }) + '\n');
      opts.onHostTaken?.();
      return await spawnLogged(host, opts);
    }
    return await spawnLogged(
      spawn(process.execPath, ['--enable-source-maps', HOST, compiled], {
        cwd,
        env: stageEnv({ ...env, LOCKSTEP_CONTEXT_FILE: ctxFile }),
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
      opts,
    );
  } finally {
    fs.rmSync(ctxFile, { force: true });
  }
}

async function spawnLogged(child: ChildProcess, opts: RunOptions): Promise<RunResult> {
  live.add(child);
  const pump = (stream: NodeJS.ReadableStream | null, name: 'stdout' | 'stderr') => {
    if (!stream) return;
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop()!;
      for (const l of lines) opts.onLine(l, name);
    });
    stream.on('end', () => {
      if (rest) opts.onLine(rest, name);
      rest = '';
    });
  };
  pump(child.stdout, 'stdout');
  pump(child.stderr, 'stderr');
  try {
    return await new Promise<RunResult>((resolve) => {
      child.once('error', (e) => resolve({ ok: false, reason: `could not start: ${e.message}` }));
      child.once('close', (code, signal) => {
        if (signal) resolve({ ok: false, reason: `killed by ${signal}` });
        else if (code !== 0) resolve({ ok: false, reason: `exit code ${code}` });
        else resolve({ ok: true });
      });
    });
  } finally {
    live.delete(child);
  }
}
