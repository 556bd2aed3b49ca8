import fs from 'node:fs';
import path from 'node:path';
import type { ParsedFileCache } from './config/parsed-cache.js';
import YAML from 'yaml';
import { UserError, type SourceLocation } from './errors.js';
import { writeFileAtomic } from './fs-util.js';
import { YamlSource } from './config/yaml-source.js';
import { isPlainObject, posixJoin, type PipelineFileRef } from './config/pipeline.js';
import type { ParamValue } from './module-contract.js';
import { DVC_LOCK_FILE, adoptDvcEntry, parseDvcLock, type DvcLockEntry } from './dvc-lock.js';
import type { Inputs, Observed } from './observe.js';
import type { Stage } from './stage.js';

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

/** The environment a container stage ran in: what the stage names, and the image ID or build hash. */
export interface LockedContainer {
  readonly image: string;
  readonly id: string;
}

export interface LockEntry {
  readonly cmd: string;
  readonly deps: readonly LockedPath[];
  readonly params: LockedParams;
  readonly outs: readonly LockedPath[];
  readonly container?: LockedContainer;
}

/** The root pipeline file alone: what callers that know no better read and write. */
const ROOT_ONLY: readonly PipelineFileRef[] = [{ file: 'pipeline.yaml', dir: '', prefix: '' }];

/**
 * pipeline.lock in memory: one beside each pipeline file, as DVC keeps a
 * dvc.lock beside each dvc.yaml. Entries are held under the stages' full
 * names with repository-relative paths; a nested lock file stores short
 * names and paths relative to its folder. Each file is written whole and
 * atomically; never partially.
 */
export class Lockfile {
  private constructor(
    private readonly root: string,
    private readonly files: readonly PipelineFileRef[],
    readonly stages: Map<string, LockEntry>,
    private readonly cache: ParsedFileCache | undefined,
    /** Entries of a dvc.lock beside pipeline.lock, consulted for stages ours does not record yet. */
    private readonly dvc: ReadonlyMap<string, DvcLockEntry> = new Map(),
  ) {}

  static read(root: string, cache?: ParsedFileCache, files: readonly PipelineFileRef[] = ROOT_ONLY): Lockfile {
    const stages = new Map<string, LockEntry>();
    const dvc = new Map<string, DvcLockEntry>();
    for (const ref of files) {
      const display = posixJoin(ref.dir, LOCK_FILE);
      const src = YamlSource.read(path.join(root, display), display, cache);
      if (src) {
        const doc = src.toJS();
        const raw = isPlainObject(doc) ? doc.stages : undefined;
        if (doc !== null && (!isPlainObject(doc) || (raw !== undefined && !isPlainObject(raw)))) {
          throw corrupt('it is not a mapping with a `stages` field', { file: display });
        }
        checkSchema(doc, src);
        for (const [name, e] of Object.entries((raw ?? {}) as Record<string, unknown>)) {
          stages.set(
            ref.prefix + name,
            fromFolder(
              parseEntry(name, e, (p) => src.locate(['stages', name, ...p])),
              ref.dir,
            ),
          );
        }
      }
      const dvcDisplay = posixJoin(ref.dir, DVC_LOCK_FILE);
      const dvcSrc = YamlSource.read(path.join(root, dvcDisplay), dvcDisplay, cache);
      if (dvcSrc) for (const [n, e] of parseDvcLock(dvcSrc.toJS(), dvcDisplay, ref.prefix)) dvc.set(n, e);
    }
    return new Lockfile(root, files, stages, cache, dvc);
  }

  /** Whether the stage was ever run, as far as pipeline.lock or dvc.lock know. */
  has(name: string): boolean {
    return this.stages.has(name) || this.dvc.has(name);
  }

  /**
   * The entry to compare a stage with: ours, or else its dvc.lock entry checked
   * against the workspace (`adopted`: commit it if the stage turns out up to date,
   * so pipeline.lock takes over from dvc.lock).
   */
  resolve(stage: Stage, root: string, inputs: Inputs, outs: readonly Observed[]): { entry: LockEntry | undefined; adopted: boolean } {
    const own = this.stages.get(stage.name);
    if (own) return { entry: own, adopted: false };
    const theirs = this.dvc.get(stage.name);
    if (!theirs) return { entry: undefined, adopted: false };
    return { entry: adoptDvcEntry(theirs, stage, { root, inputs, outs }), adopted: true };
  }

  /** Parse a lock file's text (e.g. read from a git revision). */
  static parseText(text: string, displayName = LOCK_FILE): Map<string, LockEntry> {
    const src = YamlSource.parse(displayName, text);
    const doc = src.toJS();
    const raw = isPlainObject(doc) ? doc.stages : undefined;
    const stages = new Map<string, LockEntry>();
    if (!isPlainObject(raw)) return stages;
    checkSchema(doc, src);
    for (const [name, e] of Object.entries(raw))
      stages.set(
        name,
        parseEntry(name, e, (p) => src.locate(['stages', name, ...p])),
      );
    return stages;
  }

  get(name: string): LockEntry | undefined {
    return this.stages.get(name);
  }

  set(name: string, entry: LockEntry): void {
    this.stages.set(name, entry);
  }

  /** Serialise in pipeline order (stages gone from the pipeline are dropped), each pipeline file's stages to its own lock. */
  write(order: readonly string[]): void {
    for (const ref of this.files) {
      const mine = order.filter((n) => ownerOf(n, this.files) === ref);
      const file = path.join(this.root, ref.dir, LOCK_FILE);
      // A nested pipeline's lock appears once one of its stages has run (and none at a root without a pipeline file).
      const optional = ref.dir !== '' || !fs.existsSync(path.join(this.root, ref.file));
      if (optional && mine.length === 0 && !fs.existsSync(file)) continue;
      const local = new Map(
        mine.flatMap((n) => {
          const e = this.stages.get(n);
          return e ? [[n.slice(ref.prefix.length), toFolder(e, ref.dir)] as const] : [];
        }),
      );
      const doc = lockDocument(
        local,
        mine.map((n) => n.slice(ref.prefix.length)),
      );
      writeFileAtomic(file, YAML.stringify(doc, YAML_OPTIONS));
      // We know what we just wrote: the next run need not parse it.
      this.cache?.put(file, fs.statSync(file), doc);
    }
  }
}

/** The pipeline file a stage belongs to: the one whose prefix its name carries, else the root one. */
function ownerOf(name: string, files: readonly PipelineFileRef[]): PipelineFileRef {
  return files.find((f) => f.prefix !== '' && name.startsWith(f.prefix)) ?? files.find((f) => f.prefix === '')!;
}

/** A nested lock's folder-relative paths (and params file names) made repository-relative. */
function fromFolder(e: LockEntry, dir: string): LockEntry {
  if (dir === '') return e;
  const p = (x: LockedPath): LockedPath => ({ ...x, path: posixJoin(dir, x.path) });
  return { ...e, deps: e.deps.map(p), outs: e.outs.map(p), params: Object.fromEntries(Object.entries(e.params).map(([f, v]) => [posixJoin(dir, f), v])) };
}

function toFolder(e: LockEntry, dir: string): LockEntry {
  if (dir === '') return e;
  const rel = (x: string) => path.posix.relative(dir, x) || '.';
  const p = (x: LockedPath): LockedPath => ({ ...x, path: rel(x.path) });
  return { ...e, deps: e.deps.map(p), outs: e.outs.map(p), params: Object.fromEntries(Object.entries(e.params).map(([f, v]) => [rel(f), v])) };
}

/** No `&a1`/`*a1`: two stages tracking the same params section share one object, but each entry is written in full. */
const YAML_OPTIONS = { lineWidth: 0, aliasDuplicateObjects: false } as const;

export function serialize(stages: ReadonlyMap<string, LockEntry>, order: readonly string[]): string {
  return YAML.stringify(lockDocument(stages, order), YAML_OPTIONS);
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
    if (e.container) entry.container = { image: e.container.image, id: e.container.id };
    out[name] = entry;
  }
  return { schema: '2.0', stages: out };
}

function lockedPathYaml(p: LockedPath): Record<string, unknown> {
  return {
    path: p.path,
    xxh64: p.hash,
    size: p.size,
    ...(p.nfiles !== undefined ? { nfiles: p.nfiles } : {}),
    ...(p.etag !== undefined ? { etag: p.etag } : {}),
  };
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
    message: `${location.file} is not valid: ${why}`,
    location,
    hint: `restore it from git (git checkout -- ${location.file}) or delete it to rebuild every stage`,
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
      return {
        path: x.path,
        hash: x.xxh64,
        size: x.size,
        ...(typeof x.nfiles === 'number' ? { nfiles: x.nfiles } : {}),
        ...(typeof x.etag === 'string' ? { etag: x.etag } : {}),
      };
    });
  };
  const params = e.params ?? {};
  if (!isPlainObject(params) || !Object.values(params).every(isPlainObject)) throw corrupt(`params of stage '${name}' are malformed`, at(['params']));
  const c = e.container;
  if (c !== undefined && (!isPlainObject(c) || typeof c.image !== 'string' || typeof c.id !== 'string'))
    throw corrupt(`container of stage '${name}' lacks image or id`, at(['container']));
  const container = c === undefined ? {} : { container: { image: c.image as string, id: c.id as string } };
  return { cmd: e.cmd, deps: paths(e.deps, 'deps'), params: params as LockedParams, outs: paths(e.outs, 'outs'), ...container };
}
