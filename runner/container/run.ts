import path from 'node:path';
import type { ContainerSpec } from './spec.js';
import type { Engine } from './engine.js';

interface ContainerRun {
  readonly engine: Engine;
  readonly spec: ContainerSpec;
  /** The image to run (an ID or a `lockstep-build:` tag). */
  readonly ref: string;
  /** The repository: mounted read-write at the same path, so deps and outs keep their paths. */
  readonly root: string;
  /** The stage's working directory (absolute, inside root). */
  readonly cwd: string;
  /** Other host paths the stage reads (deps outside the repository, Lockstep's module host): mounted read-only at the same path. */
  readonly readOnly: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly name: string;
  /** The process to run in the container. */
  readonly argv: readonly string[];
}

/**
 * `run` arguments for one stage. As the invoking uid:gid, so outputs are not
 * root-owned; `--init` so a signal reaches the stage and `stop` is prompt;
 * `--pull never` because a stage's environment is what is in the store, not
 * whatever a registry serves today; no network unless the stage asks.
 */
export function containerArgs(c: ContainerRun, ids: { uid: number; gid: number } = currentIds()): string[] {
  const args = ['run', '--rm', '--init', '--pull', 'never', '--name', c.name, '--network', c.spec.network];
  args.push('--user', `${ids.uid}:${ids.gid}`);
  if (c.spec.cpus !== undefined) args.push('--cpus', String(c.spec.cpus));
  if (c.spec.memory !== undefined) args.push('--memory', c.spec.memory);
  args.push('-v', `${c.root}:${c.root}`);
  for (const p of dedupe(c.readOnly.filter((p) => !inside(p, c.root)))) args.push('-v', `${p}:${p}:ro`);
  args.push('-w', c.cwd);
  for (const [k, v] of Object.entries({ ...c.spec.env, ...c.env })) args.push('-e', `${k}=${v}`);
  args.push(c.ref, ...c.argv);
  return args;
}

/** A list of shell commands as one container process: each in its own `sh -c`, stopping at the first failure, as on the host. */
export function shellArgv(commands: readonly string[]): string[] {
  return ['sh', '-c', 'for c in "$@"; do sh -c "$c" || exit $?; done', 'lockstep', ...commands];
}

function currentIds(): { uid: number; gid: number } {
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
}

function inside(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Drop paths already covered by another mount in the list. */
function dedupe(paths: readonly string[]): string[] {
  const sorted = [...new Set(paths)].sort((a, b) => a.length - b.length);
  const out: string[] = [];
  for (const p of sorted) if (!out.some((o) => inside(p, o))) out.push(p);
  return out;
}
