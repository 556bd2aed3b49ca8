import { openWorkspace } from '../workspace.js';
import { DEFAULT_PARAMS } from '../config/pipeline.js';
import { flatten, parseDataFile, parseRevision, readAt, revisionName, type Revision } from '../revision.js';
import { canonicalJson } from '../config/params.js';
import { formatChange, formatValue, renderTable, type TableFormat } from '../table.js';
import type { Io } from '../cli-io.js';
import type { Workspace } from '../workspace.js';
import { gitRevision, type PlotRevision } from '../plots/sources.js';
import { openLocalCache } from '../cache/open.js';

export type OutputFormat = TableFormat | 'json';

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
export function readFlat(ws: Workspace, files: readonly string[], rev: Revision, numericOnly: boolean): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  const revs = new Map<string, PlotRevision>();
  for (const f of files) {
    const text = readAt(ws.root, rev, f) ?? cachedAt(ws, rev, f, revs);
    if (text === undefined) continue;
    const flat = flatten(parseDataFile(f, text, rev));
    out[f] = numericOnly ? Object.fromEntries(Object.entries(flat).filter(([, v]) => typeof v === 'number' || typeof v === 'boolean')) : flat;
  }
  return out;
}

interface DiffRow {
  readonly path: string;
  readonly key: string;
  readonly old: unknown;
  readonly new: unknown;
  readonly change?: number;
}

export function diffFlat(a: Record<string, Record<string, unknown>>, b: Record<string, Record<string, unknown>>, all: boolean): DiffRow[] {
  const rows: DiffRow[] = [];
  for (const file of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const x = a[file] ?? {};
    const y = b[file] ?? {};
    for (const key of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) {
      const same = canonicalJson(x[key]) === canonicalJson(y[key]);
      if (same && !all) continue;
      const change = typeof x[key] === 'number' && typeof y[key] === 'number' ? (y[key] as number) - (x[key] as number) : undefined;
      rows.push({ path: file, key, old: x[key], new: y[key], ...(change !== undefined ? { change } : {}) });
    }
  }
  return rows;
}

/** DVC's convention: no revision = HEAD vs workspace; one = it vs workspace; two = A vs B. */
function revisions(ws: Workspace, revs: readonly string[]): [Revision, Revision] {
  if (revs.length > 2) throw new Error('at most two revisions');
  const a = parseRevision(ws.root, revs[0] ?? 'HEAD');
  const b = parseRevision(ws.root, revs[1]);
  return [a, b];
}

function printDiff(io: Io, rows: DiffRow[], a: Revision, b: Revision, format: OutputFormat, withChange: boolean, what: string): void {
  if (format === 'json') {
    io.out(JSON.stringify({ a: revisionName(a), b: revisionName(b), changes: rows }, null, 2));
    return;
  }
  if (rows.length === 0) {
    io.out(`No ${what} changed between ${revisionName(a)} and ${revisionName(b)}.`);
    return;
  }
  const header = ['Path', what === 'params' ? 'Param' : 'Metric', revisionName(a), revisionName(b), ...(withChange ? ['Change'] : [])];
  const body = rows.map((r) => [
    r.path,
    r.key,
    formatValue(r.old),
    formatValue(r.new),
    ...(withChange ? [formatChange(r.change)] : []),
  ]);
  io.out(renderTable(header, body, format));
}

/** `params diff` and `metrics diff`: the same comparison over different files; metrics keep numbers only and show the change. */
export function diffCommand(io: Io, what: 'params' | 'metrics', args: { revs: string[]; format: OutputFormat; all: boolean }): number {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const [a, b] = revisions(ws, args.revs);
  const metrics = what === 'metrics';
  const files = metrics ? metricsFilesOf(ws) : paramsFilesOf(ws);
  printDiff(io, diffFlat(readFlat(ws, files, a, metrics), readFlat(ws, files, b, metrics), args.all), a, b, args.format, metrics, what);
  return 0;
}

export function metricsShowCommand(io: Io, args: { revs: string[]; format: OutputFormat }): number {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const revs = (args.revs.length ? args.revs : ['workspace']).map((r) => parseRevision(ws.root, r));
  const files = metricsFilesOf(ws);
  const data = revs.map((r) => ({ rev: revisionName(r), metrics: readFlat(ws, files, r, true) }));
  if (args.format === 'json') {
    io.out(JSON.stringify(Object.fromEntries(data.map((d) => [d.rev, d.metrics])), null, 2));
    return 0;
  }
  const rows: string[][] = [];
  for (const d of data) for (const [file, kv] of Object.entries(d.metrics)) for (const [k, v] of Object.entries(kv)) rows.push([d.rev, file, k, formatValue(v)]);
  if (rows.length === 0) {
    io.out(files.length ? 'No metrics files found.' : 'The pipeline declares no metrics.');
    return 0;
  }
  io.out(renderTable(['Revision', 'Path', 'Metric', 'Value'], rows, args.format));
  return 0;
}
