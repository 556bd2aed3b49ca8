import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { UserError } from '../errors.js';
import { YamlSource } from '../config/yaml-source.js';
import { isPlainObject } from '../config/pipeline.js';

/** The container engines Lockstep drives; both take the same `run`/`build`/`image inspect` arguments. */
type EngineName = 'podman' | 'docker';
const ENGINES: readonly EngineName[] = ['podman', 'docker'];

export interface Engine {
  readonly name: EngineName;
  /** Absolute path of the engine's CLI. */
  readonly bin: string;
}

function onPath(cmd: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const f = path.join(dir, cmd);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** `container.engine` from .lockstep/config, overlaid by config.local, then LOCKSTEP_CONTAINER_ENGINE. */
function configuredEngine(stateDir: string, env: NodeJS.ProcessEnv): EngineName | undefined {
  let chosen: EngineName | undefined;
  for (const name of ['config', 'config.local']) {
    const src = YamlSource.read(path.join(stateDir, name), path.join('.lockstep', name));
    const doc = src?.toJS();
    if (!isPlainObject(doc) || doc.container === undefined) continue;
    const c = doc.container;
    if (!isPlainObject(c) || Object.keys(c).some((k) => k !== 'engine')) {
      throw new UserError({ message: "`container` in the config takes one field, 'engine' (podman or docker)", location: src!.locate(['container']) });
    }
    if (c.engine !== undefined) {
      if (!ENGINES.includes(c.engine as EngineName)) {
        throw new UserError({
          message: `container.engine must be podman or docker, got '${String(c.engine)}'`,
          location: src!.locate(['container', 'engine']),
        });
      }
      chosen = c.engine as EngineName;
    }
  }
  const fromEnv = env.LOCKSTEP_CONTAINER_ENGINE;
  if (fromEnv) {
    if (!ENGINES.includes(fromEnv as EngineName)) throw new UserError({ message: `LOCKSTEP_CONTAINER_ENGINE must be podman or docker, got '${fromEnv}'` });
    chosen = fromEnv as EngineName;
  }
  return chosen;
}

const resolved = new Map<string, Engine>();

/**
 * The engine container stages use: the configured one, else podman, else
 * docker, whichever is on PATH. Neither is a user error (exit 2), said once.
 */
export function resolveEngine(stateDir: string, env: NodeJS.ProcessEnv = process.env): Engine {
  const hit = resolved.get(stateDir);
  if (hit) return hit;
  const want = configuredEngine(stateDir, env);
  let engine: Engine | undefined;
  for (const name of want ? [want] : ENGINES) {
    const bin = onPath(name, env);
    if (bin) {
      engine = { name, bin };
      break;
    }
  }
  if (!engine) {
    throw new UserError({
      message: want
        ? `container stages need ${want} (container.engine), and it is not installed (not on PATH)`
        : 'container stages need podman or docker, and neither is installed (not on PATH)',
      hint: 'install podman (apt-get install podman runc catatonit) or docker, or remove `container:` from the stage',
    });
  }
  resolved.set(stateDir, engine);
  return engine;
}

interface EngineResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run the engine's CLI to completion, collecting its output (for inspect, build, image exists…). */
export function engineExec(engine: Engine, args: readonly string[], onLine?: (line: string) => void): Promise<EngineResult> {
  return new Promise((resolve) => {
    const child = spawn(engine.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let rest = '';
    const feed = (chunk: string) => {
      if (!onLine) return;
      const lines = (rest + chunk).split('\n');
      rest = lines.pop()!;
      for (const l of lines) onLine(l);
    };
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      feed(d);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      feed(d);
    });
    child.once('error', (e) => resolve({ code: -1, stdout, stderr: stderr + e.message }));
    child.once('close', (code) => {
      if (rest && onLine) onLine(rest);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}
