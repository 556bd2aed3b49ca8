import path from 'node:path';
import { UserError } from './errors.js';
import { isPlainObject, posixJoin } from './config/pipeline.js';
import { dvcPathMd5, type DvcHashName } from './hash/dvc-md5.js';
import type { LockEntry, LockedParams, LockedPath } from './lockfile.js';
import type { Inputs, Observed } from './observe.js';
import type { Stage } from './stage.js';
import type { ParamValue } from './module-contract.js';

/**
 * A repository migrating from DVC keeps its dvc.lock. Its entries name md5
 * hashes (ours are xxh64) and paths relative to the stage's wdir (ours are
 * repository-relative), so they cannot be compared as they are; instead each
 * entry is checked against the workspace with DVC's own hashing and turned
 * into an entry of ours: a path whose md5 still matches gets the xxh64 we just
 * observed, one that does not keeps a hash that matches nothing. From there
 * the normal staleness rules apply, and an up-to-date stage is not rerun.
 */
export const DVC_LOCK_FILE = 'dvc.lock';

interface DvcPath {
  readonly path: string;
  readonly md5: string;
  readonly hashName: DvcHashName;
}

export interface DvcLockEntry {
  readonly cmd: string;
  readonly deps: readonly DvcPath[];
  readonly params: LockedParams;
  readonly outs: readonly DvcPath[];
}

function corrupt(file: string, why: string): UserError {
  return new UserError({ message: `${file} is not valid: ${why}`, location: { file } });
}

/** Parse dvc.lock (schema '2.0', DVC 2 and 3). `prefix` qualifies stage names of a nested pipeline. */
export function parseDvcLock(doc: unknown, file: string, prefix = ''): Map<string, DvcLockEntry> {
  const out = new Map<string, DvcLockEntry>();
  if (doc === null || doc === undefined) return out;
  if (!isPlainObject(doc)) throw corrupt(file, 'it is not a mapping');
  if (doc.schema !== '2.0') throw corrupt(file, `schema ${JSON.stringify(doc.schema ?? null)} is not supported (only '2.0', written by DVC 2 and 3)`);
  const stages = doc.stages ?? {};
  if (!isPlainObject(stages)) throw corrupt(file, "'stages' is not a mapping");
  for (const [name, e] of Object.entries(stages)) {
    if (!isPlainObject(e)) throw corrupt(file, `stage '${name}' is not a mapping`);
    const cmd = Array.isArray(e.cmd) && e.cmd.every((c) => typeof c === 'string') ? e.cmd.join('\n') : e.cmd;
    if (typeof cmd !== 'string') throw corrupt(file, `stage '${name}' has no cmd`);
    const params = e.params ?? {};
    if (!isPlainObject(params) || !Object.values(params).every(isPlainObject)) throw corrupt(file, `params of stage '${name}' are malformed`);
    out.set(prefix + name, { cmd, deps: paths(file, name, 'deps', e.deps), params: params as LockedParams, outs: paths(file, name, 'outs', e.outs) });
  }
  return out;
}

function paths(file: string, stage: string, what: string, v: unknown): DvcPath[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw corrupt(file, `${what} of stage '${stage}' is not a list`);
  return v.map((x) => {
    if (!isPlainObject(x) || typeof x.path !== 'string') throw corrupt(file, `an entry in ${what} of stage '${stage}' has no path`);
    // External deps record etag/checksum instead; they can never match a local md5, so the stage reruns.
    const md5 = typeof x.md5 === 'string' ? x.md5 : '';
    // DVC 3 writes `hash: md5`; an entry without it was written by DVC 2 (md5 after CRLF → LF for text).
    const hashName: DvcHashName = x.hash === 'md5' ? 'md5' : 'md5-dos2unix';
    return { path: x.path, md5, hashName };
  });
}

/** Turn a dvc.lock entry into one of ours by checking each recorded md5 against the workspace. */
export function adoptDvcEntry(e: DvcLockEntry, stage: Stage, { root, inputs, outs }: { root: string; inputs: Inputs; outs: readonly Observed[] }): LockEntry {
  const observed = new Map([...inputs.deps, ...outs].map((o) => [o.path, o.state]));
  const convert = (p: DvcPath): LockedPath => {
    const rel = posixJoin(stage.wdir, p.path);
    const now = observed.get(rel);
    if (now && now.kind !== 'missing' && p.md5 !== '' && dvcPathMd5(path.resolve(root, rel), p.hashName) === p.md5) {
      return { path: rel, hash: now.hash, size: now.size, ...(now.kind === 'dir' ? { nfiles: now.nfiles } : {}) };
    }
    // A hash no xxh64 can equal: the path shows as changed (or missing), as DVC would say.
    return { path: rel, hash: `${p.hashName}:${p.md5}`, size: 0 };
  };
  // Params files are named relative to the wdir too.
  const params: Record<string, Record<string, ParamValue>> = Object.fromEntries(
    Object.entries(e.params).map(([file, values]) => [posixJoin(stage.wdir, file), { ...values }]),
  );
  // DVC records only declared params; a value the stage merely interpolates is covered by the cmd it recorded.
  for (const { file, key } of stage.trackedVars ?? []) {
    const now = inputs.params[file];
    if (now && Object.hasOwn(now, key) && !Object.hasOwn(params[file] ?? {}, key)) (params[file] ??= {})[key] = now[key]!;
  }
  return { cmd: e.cmd, deps: e.deps.map(convert), params, outs: e.outs.map(convert) };
}
