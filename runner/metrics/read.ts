import { DEFAULT_PARAMS } from '../config/pipeline.js';
import { flatten, parseDataFile, readAt, type Revision } from '../revision.js';
import type { Workspace } from '../workspace.js';
import { gitRevision, type PlotRevision } from '../plots/sources.js';
import { openLocalCache } from '../cache/open.js';

/**
 * Params and metrics values as `params diff`, `metrics show/diff`, `exp show`
 * and the UI compare them: each file read at a revision and flattened to
 * dotted keys. (Resolving the params a stage *depends on* is config/params.ts.)
 */

/** Flattened values per file: file → dotted key → value. */
export type FlatValues = Record<string, Record<string, unknown>>;

/** The params files a pipeline reads: every declared one (in stages and top-level `params:`), and params.yaml. */
export function paramsFilesOf(ws: Workspace): string[] {
  const files = new Set<string>([DEFAULT_PARAMS, ...ws.pipeline.paramsFiles]);
  for (const st of ws.pipeline.stages.values()) for (const p of st.params) files.add(p.file);
  return [...files].sort();
}

/** Stages' metrics outputs and the top-level `metrics:` files (DVCLive's `dvclive/metrics.json`). */
export function metricsFilesOf(ws: Workspace): string[] {
  const files = new Set<string>(ws.pipeline.metricsFiles);
  for (const st of ws.pipeline.stages.values()) for (const o of st.outs) if (o.kind === 'metric') files.add(o.path);
  return [...files].sort();
}

/**
 * A file at a git revision that git does not have, because it is (inside) a
 * cached output: example-get-started's `eval/metrics.json` lives in the
 * cached `eval` folder. That revision's pipeline.lock names it; the cache has it.
 */
function cachedAt(ws: Workspace, rev: Revision, file: string, seen: Map<string, PlotRevision>): string | undefined {
  if (rev.kind !== 'git') return undefined;
  let r = seen.get(rev.sha);
  if (!r) seen.set(rev.sha, (r = gitRevision(ws.root, rev.rev, rev.sha, openLocalCache(ws.stateDir).store)));
  try {
    const got = r.files(file);
    return 'missing' in got ? undefined : got.find((x) => x.path === file)?.bytes.toString('utf8');
  } catch {
    return undefined; // that revision's lock cannot be read: the file is simply not there
  }
}

/** file → flattened key → value, for the files that exist at `rev` (in git, or in the cache through its lock). */
export function readFlat(ws: Workspace, files: readonly string[], rev: Revision, numericOnly: boolean): FlatValues {
  const out: FlatValues = {};
  const revs = new Map<string, PlotRevision>();
  for (const f of files) {
    const text = readAt(ws.root, rev, f) ?? cachedAt(ws, rev, f, revs);
    if (text === undefined) continue;
    const flat = flatten(parseDataFile(f, text, rev));
    out[f] = numericOnly ? Object.fromEntries(Object.entries(flat).filter(([, v]) => typeof v === 'number' || typeof v === 'boolean')) : flat;
  }
  return out;
}
