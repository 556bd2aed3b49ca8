import path from 'node:path';
import { openWorkspace, findRoot, saveCaches, STATE_DIR, type Workspace } from '../workspace.js';
import { RepoLock } from '../repo-lock.js';
import { openLocalCache, type LocalCache } from '../cache/open.js';
import type { LockedPath } from '../lockfile.js';
import type { ExpRecord } from './store.js';
import { checkoutOutputs, missingObjects } from '../cache/checkout.js';
import { EXIT_DAMAGED_CACHE } from '../cache/object-store.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../fs-util.js';
import type { Io } from '../cli-io.js';
import { openStore } from './reap.js';

/** Bring an experiment back: its params files, its lock entries, and its outputs from the cache. */
export async function expApplyCommand(io: Io, args: { name: string }): Promise<number> {
  const repoLock = await RepoLock.acquire(path.join(findRoot(io.cwd), STATE_DIR), 'exp apply', 0);
  try {
    const ws = openWorkspace(io.cwd, { checkDeps: false });
    const rec = openStore(io, ws.stateDir).get(args.name);
    if (rec.status !== 'success' || !rec.lock || !rec.paramsText) {
      throw new UserError({ message: `experiment '${rec.name}' did not succeed (${rec.status}); there is nothing to apply` });
    }
    const cache = openLocalCache(ws.stateDir);
    // A remotely run experiment's outputs are on the remote its worker pushed them to.
    if (rec.distributed) await fetchRemoteOutputs(io, ws, cache, rec);
    // Check the cache first, so a missing object leaves the workspace as it was.
    for (const [name, entry] of Object.entries(rec.lock)) {
      const decls = ws.pipeline.stages.get(name)?.outs ?? [];
      for (const o of entry.outs) {
        if (!decls.find((d) => d.path === o.path)?.cache) continue;
        if ((await missingObjects(cache.store, o)).length) {
          throw new UserError({
            message: `experiment '${rec.name}' cannot be applied: output '${o.path}' is no longer in the cache`,
            hint: `'lockstep pull' it from a remote, or rerun it with 'lockstep exp run' and its params`,
          });
        }
      }
    }
    for (const [file, text] of Object.entries(rec.paramsText)) writeFileAtomic(path.join(ws.root, file), text);
    for (const [name, entry] of Object.entries(rec.lock)) if (ws.pipeline.stages.has(name)) ws.lock.set(name, entry);
    ws.lock.write(ws.graph.order);
    for (const [file, text] of Object.entries(rec.metricsText ?? {})) writeFileAtomic(path.join(ws.root, file), text);
    // Only the experiment's outputs: data tracked by .dvc files is not the experiment's to overwrite.
    const items = await checkoutOutputs(ws, cache, { targets: [], force: true, withPointers: false });
    saveCaches(ws);
    const restored = items.filter((i) => i.outcome === 'restored').length;
    io.out(`applied ${rec.name}: params, pipeline.lock and metrics written; ${restored} output${restored === 1 ? '' : 's'} restored from the cache`);
    // A damaged cache object was quarantined, not restored: that output is stale until its stage reruns.
    const damaged = items.filter((i) => i.outcome === 'damaged');
    for (const i of damaged) io.err(`✗ ${i.path}: not restored: ${i.detail}; 'lockstep repro ${i.stage}' makes it again`);
    return damaged.length ? EXIT_DAMAGED_CACHE : 0;
  } finally {
    repoLock.release();
  }
}

async function fetchRemoteOutputs(io: Io, ws: Workspace, cache: LocalCache, rec: ExpRecord): Promise<void> {
  const outs: { path: string; out: LockedPath }[] = [];
  for (const [name, entry] of Object.entries(rec.lock ?? {})) {
    const decls = ws.pipeline.stages.get(name)?.outs ?? [];
    for (const o of entry.outs)
      if (decls.find((d) => d.path === o.path)?.cache && (await missingObjects(cache.store, o)).length) outs.push({ path: o.path, out: o });
  }
  if (outs.length === 0) return;
  const [{ remoteFor }, { fetchOutputs }] = await Promise.all([import('../remote/open.js'), import('../cache/sync.js')]);
  const { cfg, store } = await remoteFor(ws, rec.distributed!.job.remote);
  try {
    const r = await fetchOutputs(cache, store, outs, { jobs: cfg.jobs });
    for (const f of r.failures) io.err(`✗ ${f.what}: ${f.why}`);
    if (r.transferred) io.out(`fetched ${r.transferred} object${r.transferred === 1 ? '' : 's'} of ${rec.name} from '${store.name}'`);
  } finally {
    await store.close();
  }
}
