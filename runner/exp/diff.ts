import { openWorkspace } from '../workspace.js';
import { diffFlat } from '../metrics/diff.js';
import { paramsFilesOf, readFlat } from '../metrics/read.js';
import { WORKSPACE } from '../revision.js';
import { paramsOfRecord } from './columns.js';

type PerFile = Record<string, Record<string, unknown>>;
import { formatChange, formatValue, renderTable, type TableFormat } from '../table.js';
import type { Io } from '../cli-io.js';
import { openStore } from './reap.js';

/** Params and metrics of two experiments: only what differs, unless `all`. */
export function expDiffCommand(io: Io, args: { a: string; b: string; format: TableFormat | 'json'; all?: boolean }): number {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const store = openStore(io, ws.stateDir);
  const a = store.get(args.a);
  const b = store.get(args.b);
  const all = !!args.all;
  // A queued experiment is compared with the values it will run with.
  const wsParams = a.params && b.params ? {} : readFlat(ws, paramsFilesOf(ws), WORKSPACE, false);
  const params = diffFlat(paramsOfRecord(a, wsParams) as PerFile, paramsOfRecord(b, wsParams) as PerFile, all);
  const metrics = diffFlat(a.metrics ?? {}, b.metrics ?? {}, all);
  if (args.format === 'json') {
    io.out(JSON.stringify({ a: a.name, b: b.name, params, metrics }, null, 2));
    return 0;
  }
  if (!params.length && !metrics.length) {
    io.out(`${a.name} and ${b.name} have the same params and metrics.`);
    return 0;
  }
  const rows = [
    ...params.map((r) => ['param', `${r.path}:${r.key}`, formatValue(r.old), formatValue(r.new), '']),
    ...metrics.map((r) => ['metric', `${r.path}:${r.key}`, formatValue(r.old), formatValue(r.new), r.change === undefined ? '' : formatChange(r.change)]),
  ];
  io.out(renderTable(['', 'Key', a.name, b.name, 'Change'], rows, args.format));
  return 0;
}
