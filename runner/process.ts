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
import type { ImageIdentity } from './container/spec.js';
import type { StageFailure } from './failure.js';
import { canPass, ShellSpawner } from './shell-spawner.js';

export type RunResult = { readonly ok: true } | { readonly ok: false; readonly failure: StageFailure };

export interface RunOptions {
  readonly root: string;
  readonly stateDir: string;
  readonly params: ParamsFiles;
  readonly onLine: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Lockstep's own remarks about a run (an image built): shown, but not part of the stage's log a restore replays. */
  readonly onNote?: (line: string) => void;
  /** A container stage's image, as it was fingerprinted. */
  readonly image?: ImageIdentity;
  /** A module stage took the pre-started host (the caller may start the next one). */
  readonly onHostTaken?: () => void;
  /** More environment for the stage (where its external deps were fetched to). */
  readonly env?: Readonly<Record<string, string>>;
}

// Beside this file: module-host.mjs in the bundle, module-host.js in plain tsc output.
const HOST = ['module-host.mjs', 'module-host.js'].map((f) => path.join(path.dirname(fileURLToPath(import.meta.url)), f)).find((f) => fs.existsSync(f))!;
const KILL_GRACE_MS = 3000;

/** Secrets Lockstep itself uses and stage code must never see (a stage could sign forged run-cache entries with the key). */
const WITHHELD = ['LOCKSTEP_RUN_CACHE_KEY'];

/** The environment stage processes inherit: ours, minus the withheld secrets. */
function stageEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of WITHHELD) delete env[k];
  return env;
}

/** The shells that run shell stages (see shell-spawner.ts), one set per process, started on first use. */
let spawner: ShellSpawner | undefined;

/** The shell spawner, or undefined when these variables cannot be set by a shell line. */
function shellSpawner(vars: Record<string, string>): ShellSpawner | undefined {
  if (!canPass(vars)) return undefined;
  spawner ??= new ShellSpawner(stageEnv());
  return spawner;
}

/** Children still running, so an interrupt can end every one of them (and their process groups). */
const live = new Set<ChildProcess>();

export function killAll(signal: NodeJS.Signals = 'SIGTERM'): void {
  if (spawner) {
    const pids = spawner.signalAll(signal);
    setTimeout(() => {
      for (const pid of pids) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }, KILL_GRACE_MS).unref();
  }
  for (const child of live) {
    const pid = child.pid;
    if (pid === undefined) continue;
    try {
      process.kill(-pid, signal); // the whole group: shells start grandchildren
    } catch {
      child.kill(signal);
    }
    const box = contained.get(child);
    setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
      // A killed client can leave its container running; the engine ends it (a no-op when it is gone).
      if (box) spawn(box.engine, ['rm', '-f', box.name], { stdio: 'ignore', detached: true }).unref();
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
    const w = spawn(process.execPath, ['--enable-source-maps', HOST, '--wait'], {
      cwd: root,
      env: stageEnv(),
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
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
  const env = { ...opts.env, LOCKSTEP_STAGE: stage.name, LOCKSTEP_ROOT: opts.root };
  if (stage.container && stage.command.kind === 'shell') {
    const { shellArgv } = await import('./container/run.js');
    return runContained(stage, opts, cwd, env, shellArgv(stage.command.commands));
  }
  if (stage.command.kind === 'shell') {
    const spawner = shellSpawner(env);
    for (const cmd of stage.command.commands) {
      const r = spawner
        ? await spawner.run(cmd, cwd, env, opts.onLine)
        : await spawnLogged(spawn('/bin/sh', ['-c', cmd], { cwd, env: stageEnv(env), detached: true, stdio: ['ignore', 'pipe', 'pipe'] }), opts);
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
      deps: stage.deps.map((d) => (d.external ? d.path : rel(d.path))),
      outs: stage.outs.map((o) => rel(o.path)),
      metrics: stage.outs.filter((o) => o.kind === 'metric').map((o) => rel(o.path)),
      plots: stage.outs.filter((o) => o.kind === 'plot').map((o) => rel(o.path)),
    }),
    { durable: false }, // read once by the child, removed right after
  );
  try {
    if (stage.container) {
      // The host script and the compiled module are files on the mounted paths; node is the image's.
      return await runContained(
        stage,
        opts,
        cwd,
        { ...env, LOCKSTEP_CONTEXT_FILE: ctxFile },
        ['node', '--enable-source-maps', HOST, compiled],
        [path.dirname(HOST)],
      );
    }
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

/** A stage inside its container: the image made ready (built if need be), then the engine's `run`. */
async function runContained(
  stage: Stage,
  opts: RunOptions,
  cwd: string,
  env: Record<string, string>,
  argv: string[],
  readOnly: string[] = [],
): Promise<RunResult> {
  const { resolveEngine } = await import('./container/engine.js');
  const { prepareImage } = await import('./container/image.js');
  const { containerArgs } = await import('./container/run.js');
  const spec = stage.container!;
  const engine = resolveEngine(opts.stateDir);
  const prepared = await prepareImage(engine, spec, opts.image ?? { image: '', id: undefined }, {
    root: opts.root,
    onLine: (l) => opts.onLine(l, 'stderr'),
    onNote: opts.onNote ?? ((l) => opts.onLine(l, 'stderr')),
  });
  if (!prepared.ok) return { ok: false, failure: { kind: 'image-unavailable', message: prepared.reason } };
  // Deps outside the repository are read where they are.
  const outside = stage.deps.filter((d) => d.path.startsWith('../')).map((d) => path.resolve(opts.root, d.glob ? globBase(d.path) : d.path));
  const name = `lockstep-${process.pid}-${stage.name.replace(/[^\w.-]/g, '_')}-${Math.random().toString(36).slice(2, 8)}`;
  const args = containerArgs({ engine, spec, ref: prepared.ref, root: opts.root, cwd, readOnly: [...readOnly, ...outside], env, name, argv });
  const child = spawn(engine.bin, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  contained.set(child, { engine: engine.bin, name });
  let rlimits = false;
  const onLine: RunOptions['onLine'] = (l, s) => {
    if (/error setting rlimit/.test(l)) rlimits = true;
    opts.onLine(l, s);
  };
  try {
    const r = await spawnLogged(child, { ...opts, onLine });
    if (!r.ok && rlimits) {
      return {
        ok: false,
        failure: {
          kind: 'container-start',
          message: `${engine.name} could not start the container: its default ulimits are above this machine's limits`,
          hint: 'set lower default_ulimits in a containers.conf and point CONTAINERS_CONF at it',
        },
      };
    }
    // Exit 125-127 are the engine's own (bad option, cannot start, command not found), not the stage's.
    if (!r.ok && spec.network === 'none' && !(r.failure.kind === 'exit-code' && r.failure.code >= 125 && r.failure.code <= 127)) {
      return {
        ok: false,
        failure: { ...r.failure, hint: 'in a container with network: none; if the stage needs the network, set container.network: host or bridge' },
      };
    }
    return r;
  } finally {
    contained.delete(child);
  }
}

/** The fixed folder a glob starts from (`../data/*.csv` → `../data`). */
function globBase(p: string): string {
  const parts = p.split('/');
  const i = parts.findIndex((s) => /[*?[\]{}]/.test(s));
  return parts.slice(0, i < 0 ? parts.length : i).join('/') || '.';
}

/** Containers by their client process: an interrupt removes the container too, should the client die before it. */
const contained = new Map<ChildProcess, { engine: string; name: string }>();

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
      child.once('error', (e) => resolve({ ok: false, failure: { kind: 'spawn-error', message: e.message } }));
      child.once('close', (code, signal) => {
        if (signal) resolve({ ok: false, failure: { kind: 'signal', signal } });
        else if (code !== 0) resolve({ ok: false, failure: { kind: 'exit-code', code: code ?? -1 } });
        else resolve({ ok: true });
      });
    });
  } finally {
    live.delete(child);
  }
}
