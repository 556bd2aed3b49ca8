import { openWorkspace, type Workspace } from '../workspace.js';
import { canonicalJson } from '../config/params.js';
import { metricsFilesOf, paramsFilesOf, readFlat } from '../metrics/read.js';
import { WORKSPACE } from '../revision.js';
import { formatValue, renderTable, type TableFormat } from '../table.js';
import type { Io } from '../cli-io.js';
import { openStore } from './reap.js';
import type { ExpRecord, ExpStore } from './store.js';
import { UserError } from '../errors.js';
import { globMatches, resolveColumn, rowsOf, selectColumns, sortRows, type Column, type Rows } from './columns.js';
import type { Direction } from './direction.js';

export interface ShowArgs {
  readonly format: TableFormat | 'json';
  readonly sortBy?: string;
  readonly color: boolean;
  /** Every param and metric instead of the compact default. */
  readonly all?: boolean;
  /** Column globs: show only these / leave these out. */
  readonly only?: readonly string[];
  readonly drop?: readonly string[];
}

/**
 * The pipeline's results: metrics files that no stage reads. When a later stage
 * consumes a metrics file (the lead pipeline's per-model files feed `select`),
 * that file is an intermediate step, shown only with `--all` or `--only`.
 */
export function resultMetricsFiles(ws: Workspace): Set<string> {
  const read = new Set<string>();
  for (const st of ws.pipeline.stages.values()) for (const d of st.deps) read.add(d.path);
  const isRead = (f: string) => [...read].some((d) => f === d || f.startsWith(`${d}/`));
  return new Set(metricsFilesOf(ws).filter((f) => !isRead(f)));
}

/**
 * Directions the pipeline declares (`metrics: [m.json: {lower: [ece], higher: ['*.lift']}]`),
 * for the metric columns of `t`: they win over the built-in names.
 */
export function declaredDirections(ws: Workspace, t: Rows): Map<string, Direction> {
  const out = new Map<string, Direction>();
  const byFile = new Map<string, { lower?: readonly string[]; higher?: readonly string[] }>();
  for (const st of ws.pipeline.stages.values()) for (const o of st.outs) if (o.kind === 'metric' && o.better) byFile.set(o.path, o.better);
  for (const c of t.metrics) {
    const b = byFile.get(c.file);
    if (!b) continue;
    const key = { ...c, id: c.key };
    for (const d of ['lower', 'higher'] as const) if (b[d]?.some((g) => globMatches(g, key))) out.set(c.id, d);
  }
  return out;
}

/** Collect results of experiments running on workers; with the scheduler away, say so once and show what is known. */
async function syncDistributed(io: Io, ws: Workspace, store: ExpStore): Promise<void> {
  if (!store.list().some((r) => r.distributed && r.status !== 'success')) return;
  const [{ readSchedulerConfig }, { openQueue }, { syncRecords }] = await Promise.all([
    import('../queue/config.js'),
    import('../queue/connection.js'),
    import('../queue/sync.js'),
  ]);
  const cfg = readSchedulerConfig(ws.stateDir);
  if (!cfg) return;
  const queues = new Set(store.list().flatMap((r) => (r.distributed && r.status !== 'success' ? [r.distributed.queue] : [])));
  for (const name of queues) {
    try {
      const q = await openQueue(cfg, name);
      try {
        await syncRecords(store, q, { requeue: false });
      } finally {
        await q.close();
      }
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      io.err(`warning: ${e.message.replace(/; nothing was changed$/, '')}: showing the last known state of remote experiments`);
      return;
    }
  }
}

function statusOf(r: ExpRecord): string {
  if (r.status === 'running' && r.distributed?.worker) return `running on ${r.distributed.worker}`;
  return r.status;
}

export async function expShowCommand(io: Io, args: ShowArgs): Promise<number> {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const store = openStore(io, ws.stateDir);
  await syncDistributed(io, ws, store);
  const recs = store.list();
  const wsParams = readFlat(ws, paramsFilesOf(ws), WORKSPACE, false);
  const t = rowsOf(recs, wsParams);
  const sortCol = args.sortBy ? resolveColumn(t, args.sortBy) : undefined;
  const declared = declaredDirections(ws, t);
  const cols = selectColumns(t, {
    declared,
    all: !!args.all,
    ...(args.only ? { only: args.only } : {}),
    ...(args.drop ? { drop: args.drop } : {}),
    resultFiles: resultMetricsFiles(ws),
    ...(sortCol ? { keep: sortCol.id } : {}),
  });
  const order = sortCol ? sortRows(t, sortCol, declared) : t.rows.map((_, i) => i);
  const params = cols.filter((c) => c.kind === 'param');
  const metrics = cols.filter((c) => c.kind === 'metric');

  if (args.format === 'json') {
    const allMetrics = selectColumns(t, { all: true, declared }).filter((c) => c.kind === 'metric');
    io.out(
      JSON.stringify(
        {
          experiments: order.map((i) => {
            const r = t.rows[i]!;
            const rec = recs[i]!;
            return {
              name: r.name,
              status: r.status,
              ...(rec.distributed ? { worker: rec.distributed.worker ?? null, jobId: rec.distributed.jobId } : {}),
              createdAt: r.createdAt,
              durationMs: rec.durationMs,
              overrides: rec.overrides,
              params: Object.fromEntries(params.map((c) => [c.id, r.params[c.id]])),
              metrics: r.metrics,
              ...(rec.error ? { error: rec.error } : {}),
            };
          }),
          best: Object.fromEntries(allMetrics.filter((c) => c.best.size).map((c) => [c.id, t.rows[Math.min(...c.best)]!.name])),
          directions: Object.fromEntries(allMetrics.filter((c) => c.direction).map((c) => [c.id, c.direction])),
        },
        null,
        2,
      ),
    );
    return 0;
  }
  if (recs.length === 0) {
    io.out(`No experiments yet. Run one with 'lockstep exp run -S key=value'.`);
    return 0;
  }
  // Scripts read CSV: full, stable column names there; people read text and Markdown: short ones.
  const name = (c: Column) => (args.format === 'csv' ? c.id : c.label);
  const hl = (s: string) => (args.color ? `\x1b[33m${s}\x1b[0m` : args.format === 'text' ? `${s}*` : s);
  const star = (s: string) => (args.color ? `\x1b[1;32m${s} ★\x1b[0m` : `${s} ★`);
  const header = ['Experiment', 'Status', ...(args.format === 'md' ? [] : ['Created']), ...params.map(name), ...metrics.map(name)];
  const rows = order.map((i) => {
    const r = t.rows[i]!;
    return [
      r.name,
      statusOf(recs[i]!),
      ...(args.format === 'md' ? [] : [(r.createdAt ?? '').slice(0, 16).replace('T', ' ')]),
      ...params.map((c) => {
        const v = formatValue(r.params[c.id]);
        const base = wsParams[c.file]?.[c.key];
        return base !== undefined && canonicalJson(base) !== canonicalJson(r.params[c.id]) ? hl(v) : v;
      }),
      ...metrics.map((c) => (c.best.has(i) ? star(formatValue(r.metrics[c.id])) : formatValue(r.metrics[c.id]))),
    ];
  });
  io.out(renderTable(header, rows, args.format));
  if (args.format === 'text') {
    const hidden = t.params.length + t.metrics.length - cols.length;
    io.out(`\n${args.color ? 'highlighted' : '*'}: differs from the workspace's params   ★: best value (metrics with a known direction)`);
    if (hidden > 0 && !args.all)
      io.out(
        `${hidden} more column${hidden === 1 ? '' : 's'} (the same in every row, intermediate metrics files, training-set twins): --all shows them, --only/--drop GLOB choose`,
      );
  }
  return 0;
}
