import fs from 'node:fs';
import path from 'node:path';
import { STATE_DIR, type Workspace } from '../workspace.js';
import { UserError } from '../errors.js';
import { isWithin, toRepoPath } from '../paths.js';
import { openLocalCache, stageCacheFor } from './open.js';
import { LOCK_FILE } from '../lockfile.js';
import { PIPELINE_FILE } from '../config/pipeline.js';
import { POINTER_EXT, findPointers, writePointer } from '../tracked.js';
import { ensureGitIgnored, trackedByGit } from '../gitignore.js';

/**
 * Tracking data that no stage makes (a raw dataset, a downloaded model), as
 * `dvc add` does: its content goes into the cache, a `PATH.dvc` pointer beside
 * it records the hash (commit that), and a `.gitignore` entry keeps the data
 * itself out of git. push/pull/fetch and checkout then move it like any
 * cached output.
 */

/** One path added: the pointer file written for it and what it holds. */
export interface AddedData {
  readonly path: string;
  readonly pointer: string;
  readonly hash: string;
  /** For a folder: how many files it holds. */
  readonly nfiles?: number;
}

/**
 * Add `paths` (relative to `cwd`). Every path is checked before anything is
 * touched, so a bad one leaves the repository as it was. `onAdded` hears of
 * each path as it is done. Returns the `.gitignore` files changed.
 */
export async function addData(
  ws: Workspace,
  opts: {
    cwd: string;
    paths: readonly string[];
    onAdded?: (a: AddedData) => void;
  },
): Promise<{ added: AddedData[]; ignores: string[] }> {
  const targets: { rel: string; abs: string }[] = [];
  const existing = findPointers(ws.root);
  // Check every path before touching anything: a bad one leaves the repository as it was.
  for (const p of opts.paths) {
    const abs = path.resolve(opts.cwd, p);
    const rel = toRepoPath(ws.root, '.', abs);
    if (!rel || rel === '.')
      throw new UserError({
        message: `'${p}' is not inside the repository (${ws.root})`,
      });
    if (!fs.existsSync(abs)) throw new UserError({ message: `'${p}' does not exist` });
    if (rel.endsWith(POINTER_EXT))
      throw new UserError({
        message: `'${p}' is a pointer file itself; add the data it names`,
      });
    if ([PIPELINE_FILE, LOCK_FILE, 'dvc.yaml', 'dvc.lock', STATE_DIR, '.git', '.dvc'].some((x) => isWithin(x, rel) || isWithin(rel, x))) {
      throw new UserError({
        message: `'${p}' is part of the repository's own state and cannot be added`,
      });
    }
    for (const st of ws.pipeline.stages.values()) {
      const o = st.outs.find((x) => isWithin(x.path, rel) || isWithin(rel, x.path));
      if (o)
        throw new UserError({
          message: `'${p}' overlaps output '${o.path}' of stage '${st.name}', which pipeline.lock already tracks`,
          hint: `a stage's outputs are cached by 'lockstep repro'; add only data no stage makes`,
        });
    }
    const tracked = existing.find((x) => x.outs.some((o) => o.path !== rel && (isWithin(o.path, rel) || isWithin(rel, o.path))));
    if (tracked)
      throw new UserError({
        message: `'${p}' overlaps data tracked by ${tracked.file}`,
        hint: `add the folder ${tracked.file} tracks again, or remove that pointer first`,
      });
    const other = targets.find((t) => isWithin(t.rel, rel) || isWithin(rel, t.rel));
    if (other)
      throw new UserError({
        message: `'${p}' and '${other.rel}' overlap; add one of them`,
      });
    if (trackedByGit(ws.root, rel)) {
      throw new UserError({
        message: `'${rel}' is tracked by git; it cannot also be cached data`,
        hint: `stop tracking it in git first: git rm -r --cached ${rel}`,
      });
    }
    targets.push({ rel, abs });
  }
  const cache = openLocalCache(ws.stateDir);
  const saver = stageCacheFor(ws, cache, {
    warn: () => undefined,
    useRunCache: false,
  });
  const ignores = new Set<string>();
  const added: AddedData[] = [];
  for (const t of targets) {
    const state = await ws.hasher.hashPath(t.abs);
    if (state.kind === 'missing')
      throw new UserError({
        message: `'${t.rel}' disappeared while it was being added`,
      });
    await saver.save({ path: t.rel, state });
    const pointer = writePointer(ws.root, t.rel, {
      hash: state.hash,
      size: state.size,
      ...(state.kind === 'dir' ? { nfiles: state.nfiles } : {}),
    });
    for (const g of ensureGitIgnored(ws.root, [t.rel])) ignores.add(g);
    const a: AddedData = {
      path: t.rel,
      pointer,
      hash: state.hash,
      ...(state.kind === 'dir' ? { nfiles: state.nfiles } : {}),
    };
    added.push(a);
    opts.onAdded?.(a);
  }
  return { added, ignores: [...ignores] };
}
