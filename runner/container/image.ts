import path from 'node:path';
import type { TreeHasher } from '../hash/tree.js';
import { hashString } from '../hash/xxhash.js';
import { canonicalJson } from '../config/params.js';
import type { ContainerSpec, ImageIdentity } from './spec.js';
import { engineExec, type Engine } from './engine.js';

/** Tag of an image Lockstep built from a Containerfile: named by the hash of what went into it. */
const BUILD_TAG = 'lockstep-build';

const inspected = new Map<string, Promise<string | undefined>>();

/** The image's ID in the engine's store (`sha256:…`), or undefined when there is no such image. Asked once per process. */
function imageId(engine: Engine, ref: string): Promise<string | undefined> {
  const key = `${engine.bin}\0${ref}`;
  let p = inspected.get(key);
  if (!p) {
    p = engineExec(engine, ['image', 'inspect', '--format', '{{.Id}}', ref]).then((r) => {
      const id = r.stdout.trim().split('\n')[0] ?? '';
      if (r.code !== 0 || !/^(sha256:)?[0-9a-f]{64}$/.test(id)) return undefined;
      return id.startsWith('sha256:') ? id : `sha256:${id}`;
    });
    inspected.set(key, p);
  }
  return p;
}

/** What to show for a spec in status and the lock. */
function imageLabel(spec: ContainerSpec): string {
  return spec.image ?? `build ${spec.build.file}`;
}

/**
 * The stage's environment as an input. A named image is its ID in the store
 * (re-tagging `NAME` to another image changes it); a Containerfile is the hash
 * of its text, its build context and its build args, known without building.
 */
export async function identify(spec: ContainerSpec, root: string, hasher: TreeHasher, engine: () => Engine): Promise<ImageIdentity> {
  const image = imageLabel(spec);
  if (spec.image !== undefined) return { image, id: await imageId(engine(), spec.image) };
  const file = await hasher.hashPath(path.join(root, spec.build.file));
  const context = await hasher.hashPath(path.join(root, spec.build.context));
  if (file.kind !== 'file' || context.kind !== 'dir') return { image, id: undefined };
  const hash = await hashString(canonicalJson({ containerfile: file.hash, context: context.hash, args: spec.build.args }));
  return { image, id: `xxh64:${hash}` };
}

type Prepared = { readonly ok: true; readonly ref: string } | { readonly ok: false; readonly reason: string };

const building = new Map<string, Promise<Prepared>>();

/**
 * The image reference to run: a named image pinned to the ID the stage was
 * fingerprinted with, or the build's `lockstep-build:<hash>` tag, built only
 * when the store lacks it (an unchanged Containerfile is never rebuilt).
 */
/** Where a build runs and reports: the repository root (paths in the spec are relative to it), its log lines, and notes such as how long it took. */
export interface BuildContext {
  readonly root: string;
  readonly onLine: (line: string) => void;
  readonly onNote: (line: string) => void;
}

export function prepareImage(engine: Engine, spec: ContainerSpec, identity: ImageIdentity, ctx: BuildContext): Promise<Prepared> {
  if (spec.image !== undefined) {
    if (!identity.id) return Promise.resolve({ ok: false, reason: missingImage(engine, spec.image) });
    return Promise.resolve({ ok: true, ref: identity.id.replace(/^sha256:/, '') });
  }
  if (!identity.id) return Promise.resolve({ ok: false, reason: `Containerfile '${spec.build.file}' or its context '${spec.build.context}/' does not exist` });
  const tag = `${BUILD_TAG}:${identity.id.replace(/^xxh64:/, '')}`;
  let p = building.get(tag);
  if (!p) {
    p = build(engine, spec.build, tag, ctx);
    building.set(tag, p);
  }
  return p;
}

export function missingImage(engine: Engine, name: string): string {
  return `image '${name}' does not exist in ${engine.name}'s image store (Lockstep never pulls: build, pull or load it first)`;
}

async function build(engine: Engine, b: NonNullable<ContainerSpec['build']>, tag: string, { root, onLine, onNote }: BuildContext): Promise<Prepared> {
  if ((await imageId(engine, tag)) !== undefined) return { ok: true, ref: tag };
  const t0 = performance.now();
  const args = ['build', '-f', path.join(root, b.file), '-t', tag];
  for (const [k, v] of Object.entries(b.args)) args.push('--build-arg', `${k}=${v}`);
  args.push(path.join(root, b.context));
  const log: string[] = [];
  const r = await engineExec(engine, args, (l) => log.push(l));
  inspected.delete(`${engine.bin}\0${tag}`);
  if (r.code !== 0) {
    // The build's own words say what went wrong; the tail is where they are.
    for (const l of log.slice(-40)) onLine(l);
    return { ok: false, reason: `Containerfile '${b.file}' failed to build (${engine.name} build exit code ${r.code}; its log is above)` };
  }
  onNote(`built ${tag} from ${b.file} in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  return { ok: true, ref: tag };
}
