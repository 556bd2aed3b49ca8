import fs from 'node:fs';
import path from 'node:path';
import type { Stage } from './stage.js';
import { commandText } from './stage.js';
import type { PathState, TreeHasher } from './hash/tree.js';
import { canonicalJson, lookup, type ParamsFiles } from './config/params.js';
import { hashString } from './hash/xxhash.js';
import type { LockedContainer, LockedParams, LockedPath } from './lockfile.js';
import type { ParamValue } from './module-contract.js';
import type { ImageIdentity } from './container/spec.js';
import { STATE_DIR } from './workspace.js';

/** What a path looks like on disk right now. */
export interface Observed {
  readonly path: string;
  readonly state: PathState;
}

/** A stage's inputs as they are now: the command text, dep contents and params values. */
export interface Inputs {
  readonly cmd: string;
  readonly deps: readonly Observed[];
  readonly params: LockedParams;
  /** A container stage's environment: its image, identified by ID or build hash. */
  readonly container?: ImageIdentity;
}

export async function observeInputs(stage: Stage, root: string, hasher: TreeHasher, params: ParamsFiles): Promise<Inputs> {
  const deps: Observed[] = [];
  for (const d of stage.deps) {
    // External deps load their HTTP/S3 machinery only when a stage has one.
    const state = d.external
      ? await (await import('./external.js')).observeExternal(d.path)
      : d.glob
        ? await hasher.hashGlob(root, d.path)
        : await hasher.hashPath(path.resolve(root, d.path));
    deps.push({ path: d.path, state });
  }
  if (stage.command.kind === 'module') {
    for (const src of await codeDeps(stage, stage.command.module, root)) deps.push({ path: src, state: await hasher.hashPath(path.resolve(root, src)) });
  }
  const inputs = { cmd: commandText(stage.command), deps, params: paramsValues(stage, params) };
  if (!stage.container) return inputs;
  // Loaded only for container stages: a pipeline without them never touches the engine.
  const { identify } = await import('./container/image.js');
  const { resolveEngine } = await import('./container/engine.js');
  return { ...inputs, container: await identify(stage.container, root, hasher, () => resolveEngine(path.join(root, STATE_DIR))) };
}

/**
 * A module stage's own code as inputs: the files of its import closure that no
 * declared dep already covers. A module that does not compile counts only
 * itself here (a missing one nothing); running the stage then reports the error.
 */
async function codeDeps(stage: Stage, modulePath: string, root: string): Promise<string[]> {
  const { moduleSources } = await import('./module-build.js');
  let sources: string[];
  try {
    sources = await moduleSources(root, path.join(root, STATE_DIR), modulePath);
  } catch {
    // A module that does not compile is itself the changed input; one that does not exist is reported by the run.
    sources = fs.existsSync(path.resolve(root, modulePath)) ? [modulePath] : [];
  }
  const declared = stage.deps.filter((d) => !d.glob && !d.external).map((d) => d.path);
  return sources.filter((src) => !declared.some((d) => src === d || src.startsWith(`${d}/`)));
}

export function paramsValues(stage: Stage, params: ParamsFiles): LockedParams {
  const out: Record<string, Record<string, ParamValue>> = {};
  for (const decl of stage.params) {
    const tree = params.get(decl.file) ?? {};
    const values: Record<string, ParamValue> = {};
    if (decl.keys === 'all') Object.assign(values, tree);
    else {
      for (const k of decl.keys) {
        const r = lookup(tree, k);
        if (r.found) values[k] = r.value;
      }
    }
    out[decl.file] = values;
  }
  return out;
}

export async function observeOuts(stage: Stage, root: string, hasher: TreeHasher): Promise<Observed[]> {
  const outs: Observed[] = [];
  for (const o of stage.outs) outs.push({ path: o.path, state: await hasher.hashPath(path.join(root, o.path)) });
  return outs;
}

export function toLocked(o: Observed): LockedPath | undefined {
  const s = o.state;
  if (s.kind === 'missing') return undefined;
  return {
    path: o.path,
    hash: s.hash,
    size: s.size,
    ...(s.kind === 'dir' ? { nfiles: s.nfiles } : {}),
    ...(s.kind === 'file' && s.etag !== undefined ? { etag: s.etag } : {}),
  };
}

/**
 * The run-cache key: everything that determines a stage's result. Undefined
 * when a dep is missing (such a stage cannot run, so it has no result).
 */
export async function fingerprint(inputs: Inputs): Promise<string | undefined> {
  const deps: [string, string][] = [];
  for (const d of inputs.deps) {
    if (d.state.kind === 'missing') return undefined;
    deps.push([d.path, d.state.hash]);
  }
  if (inputs.container && !inputs.container.id) return undefined;
  return fingerprintOf(inputs.cmd, deps, inputs.params, inputs.container?.id);
}

/** The same key for what a lock entry recorded, so a lock entry is a run-cache entry too. */
export function lockFingerprint(e: { cmd: string; deps: readonly LockedPath[]; params: LockedParams; container?: LockedContainer }): Promise<string> {
  return fingerprintOf(
    e.cmd,
    e.deps.map((d) => [d.path, d.hash]),
    e.params,
    e.container?.id,
  );
}

function fingerprintOf(cmd: string, deps: readonly (readonly [string, string])[], params: LockedParams, image: string | undefined): Promise<string> {
  // The image joins the key only when there is one, so host stages keep the keys they always had.
  return hashString(canonicalJson(image === undefined ? { cmd, deps, params } : { cmd, deps, params, image }));
}
