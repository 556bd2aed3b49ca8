import fs from 'node:fs';
import path from 'node:path';
import { openWorkspace, saveCaches } from '../workspace.js';
import { metricsFilesOf, paramsFilesOf, readFlat } from '../metrics/read.js';
import { WORKSPACE } from '../revision.js';
import { declaredPlots } from '../plots/decls.js';
import { openLocalCache, stageCacheFor } from '../cache/open.js';
import { isWithin } from '../paths.js';
import type { LockEntry, LockedPath } from '../lockfile.js';
import type { ExpRecord } from './store.js';

/**
 * The lock-entry name under which an experiment keeps plot files no stage
 * declares (DVCLive's `dvclive/plots/…`, named only in top-level `plots:`),
 * so `plots diff --exp` can draw them. No stage has this name.
 */
const PLOT_FILES_ENTRY = ':plots';

/**
 * What an experiment's run left behind in a workspace: params, metrics and
 * lock entries. `stateDir` is the repository whose cache keeps the plot files.
 */
export async function collectResult(dir: string, stateDir: string): Promise<Pick<ExpRecord, 'paramsText' | 'params' | 'metrics' | 'metricsText' | 'lock'>> {
  const ws = openWorkspace(dir, { checkDeps: false });
  const paramsFiles = paramsFilesOf(ws).filter((f) => fs.existsSync(path.join(ws.root, f)));
  const metricsFiles = metricsFilesOf(ws).filter((f) => fs.existsSync(path.join(ws.root, f)));
  const readText = (files: string[]) => Object.fromEntries(files.map((f) => [f, fs.readFileSync(path.join(ws.root, f), 'utf8')]));
  const lock: Record<string, LockEntry> = Object.fromEntries(ws.lock.stages);
  const loose = await savePlotFiles(ws, stateDir);
  if (loose.length) lock[PLOT_FILES_ENTRY] = { cmd: '', deps: [], params: {}, outs: loose };
  saveCaches(ws);
  return {
    paramsText: readText(paramsFiles),
    params: readFlat(ws, paramsFiles, WORKSPACE, false),
    metrics: readFlat(ws, metricsFiles, WORKSPACE, true),
    metricsText: readText(metricsFiles),
    lock,
  };
}

/** Plot files outside every stage output, saved into the cache as they are now. */
async function savePlotFiles(ws: ReturnType<typeof openWorkspace>, stateDir: string): Promise<LockedPath[]> {
  const outs = [...ws.pipeline.stages.values()].flatMap((s) => s.outs.map((o) => o.path));
  const paths = [...new Set(declaredPlots(ws.pipeline).flatMap((d) => d.sources.map((s) => s.path)))].filter((p) => !outs.some((o) => isWithin(o, p)));
  if (!paths.length) return [];
  const cache = openLocalCache(stateDir);
  const saver = stageCacheFor(ws, cache, { warn: () => undefined, useRunCache: false });
  const locked: LockedPath[] = [];
  for (const p of paths) {
    const state = await ws.hasher.hashPath(path.join(ws.root, p));
    if (state.kind === 'missing') continue;
    await saver.save({ path: p, state });
    locked.push({ path: p, hash: state.hash, size: state.size, ...(state.kind === 'dir' ? { nfiles: state.nfiles } : {}) });
  }
  return locked;
}
