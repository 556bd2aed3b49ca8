import fs from 'node:fs';
import path from 'node:path';
import type { ParsedFileCache } from './config/parsed-cache.js';
import YAML from 'yaml';
import { UserError, type SourceLocation } from './errors.js';
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
      checkSchema(doc, src);
      for (const [name, e] of Object.entries((raw ?? {}) as Record<string, unknown>)) {
        stages.set(name, parseEntry(name, e, (p) => src.locate(['stages', name, ...p])));
      }
    }
    return new Lockfile(file, stages, cache);
  }

  /** Parse a lock file's text (e.g. read from a git revision). */
  static parseText(text: string, displayName = LOCK_FILE): Map<string, LockEntry> {
    const src = YamlSource.parse(displayName, text);
    const doc = src.toJS();
    const raw = isPlainObject(doc) ? doc.stages : undefined;
    const stages = new Map<string, LockEntry>();
    if (!isPlainObject(raw)) return stages;
    checkSchema(doc, src);
    for (const [name, e] of Object.entries(raw)) stages.set(name, parseEntry(name, e, (p) => src.locate(['stages', name, ...p])));
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
  return { path: p.path, xxh64: p.hash, size: p.size, ...(p.nfiles !== undefined ? { nfiles: p.nfiles } : {}) };
}

/** The lock schemas this version reads; a newer (or foreign) lock must not be used and then rewritten. */
const SCHEMAS = ['2.0'];

function checkSchema(doc: unknown, src: YamlSource): void {
  const schema = isPlainObject(doc) ? doc.schema : undefined;
  if (schema === undefined || SCHEMAS.includes(String(schema))) return;
  throw new UserError({
    message: `schema '${String(schema)}' is not one this version reads (${SCHEMAS.join(', ')})`,
    location: src.locate(['schema']),
    hint: 'a newer Lockstep wrote it, or it is not a Lockstep lock; use that version, or restore the file from git',
  });
}

/** An xxh64 content hash as the lock records it (a directory's ends in `.dir`). */
const HASH_RE = /^[0-9a-f]{16}(\.dir)?$/;

function corrupt(why: string, location: SourceLocation = { file: LOCK_FILE }): UserError {
  return new UserError({
    message: `${LOCK_FILE} is not valid: ${why}`,
    location,
    hint: `restore it from git (git checkout -- ${LOCK_FILE}) or delete it to rebuild every stage`,
  });
}

function parseEntry(name: string, e: unknown, at: (p: (string | number)[]) => SourceLocation): LockEntry {
  if (!isPlainObject(e) || typeof e.cmd !== 'string') throw corrupt(`stage '${name}' has no cmd`, at([]));
  const paths = (v: unknown, what: 'deps' | 'outs'): LockedPath[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw corrupt(`${what} of stage '${name}' is not a list`, at([what]));
    return v.map((x, i) => {
      if (!isPlainObject(x) || typeof x.path !== 'string' || typeof x.xxh64 !== 'string' || typeof x.size !== 'number') {
        throw corrupt(`an entry in ${what} of stage '${name}' lacks path, xxh64 or size`, at([what, i]));
      }
      if (!HASH_RE.test(x.xxh64)) {
        throw corrupt(`'${x.xxh64}' (${what} of stage '${name}', ${x.path}) is not an xxh64 hash (16 hex digits, '.dir' for a folder)`, at([what, i, 'xxh64']));
      }
      return { path: x.path, hash: x.xxh64, size: x.size, ...(typeof x.nfiles === 'number' ? { nfiles: x.nfiles } : {}) };
    });
  };
  const params = e.params ?? {};
  if (!isPlainObject(params) || !Object.values(params).every(isPlainObject)) throw corrupt(`params of stage '${name}' are malformed`, at(['params']));
  return { cmd: e.cmd, deps: paths(e.deps, 'deps'), params: params as LockedParams, outs: paths(e.outs, 'outs') };
}
