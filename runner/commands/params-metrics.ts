import { openWorkspace, type Workspace } from '../workspace.js';
import { parseRevision, revisionName, type Revision } from '../revision.js';
import { formatChange, formatValue, renderTable, type TableFormat } from '../table.js';
import { metricsFilesOf, paramsFilesOf, readFlat } from '../metrics/read.js';
import { diffFlat, type DiffRow } from '../metrics/diff.js';
import type { Io } from '../cli-io.js';

export type OutputFormat = TableFormat | 'json';

/** DVC's convention: no revision = HEAD vs workspace; one = it vs workspace; two = A vs B. */
function revisions(ws: Workspace, revs: readonly string[]): [Revision, Revision] {
  if (revs.length > 2) throw new Error('at most two revisions');
  const a = parseRevision(ws.root, revs[0] ?? 'HEAD');
  const b = parseRevision(ws.root, revs[1]);
  return [a, b];
}

/** Metrics show the numeric change too. */
function printDiff(io: Io, rows: DiffRow[], { a, b, format, what }: { a: Revision; b: Revision; format: OutputFormat; what: 'params' | 'metrics' }): void {
  const withChange = what === 'metrics';
  if (format === 'json') {
    io.out(JSON.stringify({ a: revisionName(a), b: revisionName(b), changes: rows }, null, 2));
    return;
  }
  if (rows.length === 0) {
    io.out(`No ${what} changed between ${revisionName(a)} and ${revisionName(b)}.`);
    return;
  }
  const header = ['Path', what === 'params' ? 'Param' : 'Metric', revisionName(a), revisionName(b), ...(withChange ? ['Change'] : [])];
  const body = rows.map((r) => [r.path, r.key, formatValue(r.old), formatValue(r.new), ...(withChange ? [formatChange(r.change)] : [])]);
  io.out(renderTable(header, body, format));
}

/** `params diff` and `metrics diff`: the same comparison over different files; metrics keep numbers only and show the change. */
export function diffCommand(io: Io, what: 'params' | 'metrics', args: { revs: string[]; format: OutputFormat; all: boolean }): number {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const [a, b] = revisions(ws, args.revs);
  const metrics = what === 'metrics';
  const files = metrics ? metricsFilesOf(ws) : paramsFilesOf(ws);
  printDiff(io, diffFlat(readFlat(ws, files, a, metrics), readFlat(ws, files, b, metrics), args.all), { a, b, format: args.format, what });
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
  for (const d of data)
    for (const [file, kv] of Object.entries(d.metrics)) for (const [k, v] of Object.entries(kv)) rows.push([d.rev, file, k, formatValue(v)]);
  if (rows.length === 0) {
    io.out(files.length ? 'No metrics files found.' : 'The pipeline declares no metrics.');
    return 0;
  }
  io.out(renderTable(['Revision', 'Path', 'Metric', 'Value'], rows, args.format));
  return 0;
}
