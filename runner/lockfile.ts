import fs from 'node:fs';
import path from 'node:path';
import type { ParsedFileCache } from './config/parsed-cache.js';
import YAML from 'yaml';
import { UserError } from './errors.js';
import { writeFileAtomic } from './fs-util.js';
import { YamlSource } from './config/yaml-source.js';
import { isPlainObject } from './config/pipeline.js';
import type { ParamValue } from './module-contract.js';

export const LOCK_FILE = 'pipeline.lock';

export interface LockedPath {
  readonly path: string;
  readonly hash: string;
  readonly size: number;
  /** Present for directories (and glob deps). */
  readonly nfiles?: number;
  /** For an external dep: the server's version id (ETag, S3 version) that `hash` stands for. */
  readonly etag?: string;
}

export type LockedParams = Readonly<Record<string, Readonly<Record<string, ParamValue>>>>;

export interface LockEntry {
  readonly cmd: string;
  readonly deps: readonly LockedPath[];
  readonly params: LockedParams;
  readonly outs: readonly LockedPath[];
}

/** pipeline.lock in memory. Written whole and atomically; never partially. */
export class Lockfile {
  private constructor(
    private readonly file: string,
    readonly stages: Map<string, LockEntry>,
    private readonly cache: ParsedFileCache | undefined,
  ) {}

  static read(root: string, cache?: ParsedFileCache): Lockfile {
    const file = path.join(root, LOCK_FILE);
    const src = YamlSource.read(file, LOCK_FILE, cache);
    const stages = new Map<string, LockEntry>();
    if (src) {
      const doc = src.toJS();
      const raw = isPlainObject(doc) ? doc.stages : undefined;
      if (doc !== null && (!isPlainObject(doc) || (raw !== undefined && !isPlainObject(raw)))) {
        throw corrupt('it is not a mapping with a `stages` field');
      }
      for (const [name, e] of Object.entries((raw ?? {}) as Record<string, unknown>)) {
        stages.set(name, parseEntry(name, e));
      }
    }
    return new Lockfile(file, stages, cache);
  }

  /** Parse a lock file's text (e.g. read from a git revision). */
  static parseText(text: string, displayName = LOCK_FILE): Map<string, LockEntry> {
    const doc = YamlSource.parse(displayName, text).toJS();
    const raw = isPlainObject(doc) ? doc.stages : undefined;
    const stages = new Map<string, LockEntry>();
    if (!isPlainObject(raw)) return stages;
    for (const [name, e] of Object.entries(raw)) stages.set(name, parseEntry(name, e));
    return stages;
  }

  get(name: string): LockEntry | undefined {
    return this.stages.get(name);
  }

  set(name: string, entry: LockEntry): void {
    this.stages.set(name, entry);
  }

  /** Serialise in pipeline order (stages gone from the pipeline are dropped). */
  write(order: readonly string[]): void {
    const doc = lockDocument(this.stages, order);
    writeFileAtomic(this.file, YAML.stringify(doc, { lineWidth: 0 }));
    // We know what we just wrote: the next run need not parse it.
    this.cache?.put(this.file, fs.statSync(this.file), doc);
  }
}

export function serialize(stages: ReadonlyMap<string, LockEntry>, order: readonly string[]): string {
  return YAML.stringify(lockDocument(stages, order), { lineWidth: 0 });
}

function lockDocument(stages: ReadonlyMap<string, LockEntry>, order: readonly string[]): { schema: string; stages: Record<string, unknown> } {
  const out: Record<string, unknown> = {};
  for (const name of order) {
    const e = stages.get(name);
    if (!e) continue;
    const entry: Record<string, unknown> = { cmd: e.cmd };
    if (e.deps.length) entry.deps = e.deps.map(lockedPathYaml);
    if (Object.keys(e.params).length) entry.params = e.params;
    if (e.outs.length) entry.outs = e.outs.map(lockedPathYaml);
    out[name] = entry;
  }
  return { schema: '2.0', stages: out };
}

function lockedPathYaml(p: LockedPath): Record<string, unknown> {
  return { path: p.path, xxh64: p.hash, size: p.size, ...(p.nfiles !== undefined ? { nfiles: p.nfiles } : {}), ...(p.etag !== undefined ? { etag: p.etag } : {}) };
}

function corrupt(why: string): UserError {
  return new UserError({
    message: `${LOCK_FILE} is not valid: ${why}`,
    location: { file: LOCK_FILE },
    hint: `restore it from git (git checkout -- ${LOCK_FILE}) or delete it to rebuild every stage`,
  });
}

function parseEntry(name: string, e: unknown): LockEntry {
  if (!isPlainObject(e) || typeof e.cmd !== 'string') throw corrupt(`stage '${name}' has no cmd`);
  const paths = (v: unknown, what: string): LockedPath[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw corrupt(`${what} of stage '${name}' is not a list`);
    return v.map((x) => {
      if (!isPlainObject(x) || typeof x.path !== 'string' || typeof x.xxh64 !== 'string' || typeof x.size !== 'number') {
        throw corrupt(`an entry in ${what} of stage '${name}' lacks path, xxh64 or size`);
      }
      return { path: x.path, hash: x.xxh64, size: x.size, ...(typeof x.nfiles === 'number' ? { nfiles: x.nfiles } : {}), ...(typeof x.etag === 'string' ? { etag: x.etag } : {}) };
    });
  };
  const params = e.params ?? {};
  if (!isPlainObject(params) || !Object.values(params).every(isPlainObject)) throw corrupt(`params of stage '${name}' are malformed`);
  return { cmd: e.cmd, deps: paths(e.deps, 'deps'), params: params as LockedParams, outs: paths(e.outs, 'outs') };
}
