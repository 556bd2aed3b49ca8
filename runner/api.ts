/**
 * What an application built on Lockstep (the example in stages/, its `leads`
 * CLI) may use of the engine. Everything else in runner/ is internal: the app
 * must not parse pipeline.lock or find the repository root by itself, because
 * the engine's own view (batched lock writes, the configured cache folder) is
 * the only one that stays right.
 */
import fs from 'node:fs';
import path from 'node:path';
import { contentHash } from './hash/xxhash.js';
import { Lockfile, type LockedPath, type LockEntry } from './lockfile.js';
import { cacheSettings } from './cache/settings.js';
import { objectKey, isContentHash, isDirHash } from './cache/layout.js';
import { parseManifest } from './cache/manifest.js';
import { ExpStore, type ExpRecord } from './exp/store.js';
import { findRoot } from './workspace.js';
import { UserError } from './errors.js';
import { ParamsFiles } from './config/params.js';
import type { ParamValue } from './module-contract.js';
import { RepoLock } from './repo-lock.js';

export type { StageContext, ParamValue } from './module-contract.js';
export type { LockEntry } from './lockfile.js';

const STATE_DIR = '.lockstep';

/** The project root as the engine finds it (the same rule every lockstep command uses), or undefined outside a project. */
export function projectRoot(start: string): string | undefined {
  try {
    return findRoot(start);
  } catch (e) {
    if (e instanceof UserError) return undefined;
    throw e;
  }
}

export { contentHash };

/** What pipeline.lock records for a stage in the workspace (its command, deps, params and outputs), or undefined. */
export function lockEntry(root: string, stage: string): LockEntry | undefined {
  return Lockfile.read(root).get(stage);
}

/**
 * A file object from the local cache, checked against its name, or undefined
 * when the cache does not have it (collected, or never pulled) or it is damaged.
 */
export async function readCachedFile(root: string, hash: string): Promise<Buffer | undefined> {
  if (!isContentHash(hash) || isDirHash(hash)) return undefined;
  const bytes = readObject(root, hash);
  if (!bytes) return undefined;
  return (await contentHash(bytes)) === hash ? bytes : undefined;
}

/** The files of a cached directory output (relative path → content hash), or undefined when it is not cached. */
export async function readCachedTree(root: string, dirHash: string): Promise<readonly { relpath: string; hash: string }[] | undefined> {
  if (!isContentHash(dirHash) || !isDirHash(dirHash)) return undefined;
  const bytes = readObject(root, dirHash);
  if (!bytes) return undefined;
  const parsed = await parseManifest(bytes.toString('utf8'), dirHash);
  return parsed.ok ? parsed.entries.map((e) => ({ relpath: e.relpath, hash: e.hash })) : undefined;
}

/** An experiment as the app needs it: its name, state and the lock entries its run recorded. */
export interface ExperimentView {
  readonly name: string;
  readonly status: ExpRecord['status'];
  readonly outs: Readonly<Record<string, readonly LockedPath[]>>;
}

/** Every recorded experiment (queued ones included, with no outputs yet). */
export function experiments(root: string): readonly ExperimentView[] {
  return new ExpStore(path.join(root, STATE_DIR)).list().map((r) => ({
    name: r.name,
    status: r.status,
    outs: Object.fromEntries(Object.entries(r.lock ?? {}).map(([stage, e]) => [stage, e.outs])),
  }));
}

function readObject(root: string, hash: string): Buffer | undefined {
  try {
    return fs.readFileSync(path.join(cacheSettings(path.join(root, STATE_DIR)).dir, objectKey(hash)));
  } catch {
    return undefined;
  }
}

/** The engine's user-error type: one line with a location, exit 2. */
export { UserError };

/**
 * A params file of the project as the engine reads it (YAML, JSON, TOML or Python; alias bombs, bad syntax
 * and a FIFO refused with their location), or undefined when the file does not exist.
 */
export function readParams(root: string, file = 'params.yaml'): Readonly<Record<string, ParamValue>> | undefined {
  return new ParamsFiles(root).get(file);
}

/** The engine's atomic write (temp file, fsync, rename): readers see the old bytes or the new, never a torn file. */
export { writeFileAtomic } from './fs-util.js';

/** The engine's table renderer (aligned text, Markdown or CSV from one row model). */
export { renderTable } from './table.js';

/** The command-line kit `lockstep` is built on, so the app's CLI parses, reports errors and exits the same way. */
export { createProgram, EXIT, wholeNumber, type Program } from './cli-kit.js';
export { processIo, type Io } from './cli-io.js';

/**
 * Run `fn` holding `file` (created exclusively) as a lock between processes: the
 * engine's repository lock, whose holder is recorded with its pid, start time and
 * host, so a lock left by a crashed process is taken over and a reused pid is not
 * mistaken for the holder. Waiting longer than `waitMs` is a UserError (exit 3)
 * naming `label` and who holds it.
 */
export async function withFileLock<T>(file: string, fn: () => T | Promise<T>, opts: { label: string; what: string; waitMs?: number }): Promise<T> {
  const lock = await RepoLock.acquire(path.dirname(file), opts.what, opts.waitMs ?? 10_000, {
    file: path.basename(file),
    label: opts.label,
    hint: 'wait for it to finish and try again',
  });
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
