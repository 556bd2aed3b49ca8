import fs from 'node:fs';
import path from 'node:path';
import { openWorkspace, findRoot, saveCaches, STATE_DIR, type Workspace } from '../workspace.js';
import { RepoLock } from '../repo-lock.js';
import { openLocalCache, type LocalCache } from '../cache/open.js';
import type { LockedPath } from '../lockfile.js';
import { missingObjects } from '../cache/checkout.js';
import { checkoutOutputs } from '../commands/checkout.js';
import { UserError, didYouMean } from '../errors.js';
import { canonicalJson } from '../config/params.js';
import { diffFlat, paramsFilesOf, readFlat } from '../commands/params-metrics.js';
import { WORKSPACE } from '../revision.js';
import { formatChange, formatValue, renderTable, type TableFormat } from '../table.js';
import { writeFileAtomic } from '../fs-util.js';
import type { Io } from '../cli-io.js';
import { ExpStore, type ExpRecord } from './store.js';

type Flat = Record<string, unknown>;

/** Lower is better for these; higher for everything else (accuracy, f1, auc, …). */
const LOWER_IS_BETTER = /(loss|error|err|mae|mse|rmse|logloss|log_loss|time|latency|duration)$/i;

function flatOf(rec: Pick<ExpRecord, 'params' | 'metrics'>, which: 'params' | 'metrics'): Flat {
  const src = rec[which] ?? {};
  const files = Object.keys(src);
  const out: Flat = {};
  for (const [file, kv] of Object.entries(src)) {
    for (const [k, v] of Object.entries(kv)) out[files.length > 1 ? `${file}:${k}` : k] = v;
  }
  return out;
}

export interface ShowArgs {
  readonly format: TableFormat | 'json';
  readonly sortBy?: string;
  readonly color: boolean;
}

/** Collect results of experiments running on workers; with the scheduler away, say so once and show what is known. */
async function syncDistributed(io: Io, ws: Workspace, store: ExpStore): Promise<void> {
  if (!store.list().some((r) => r.distributed && r.status !== 'success')) return;
  const [{ readSchedulerConfig }, { openQueue }, { syncRecords }] = await Promise.all([import('../queue/config.js'), import('../queue/connection.js'), import('../queue/sync.js')]);
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
  const store = new ExpStore(ws.stateDir);
  await syncDistributed(io, ws, store);
  let recs = store.list();
  const base = readFlat(ws, paramsFilesOf(ws), WORKSPACE, false);
  const baseFlat = flatOf({ params: base }, 'params');
  const params = recs.map((r) => flatOf(r, 'params'));
  const metrics = recs.map((r) => flatOf(r, 'metrics'));
  const metricKeys = [...new Set(metrics.flatMap((m) => Object.keys(m)))].sort();
  // Only the params that tell experiments apart: overridden ones and any that vary.
  const overridden = new Set(recs.flatMap((r) => Object.entries(r.overrides).flatMap(([f, kv]) => Object.keys(kv).map((k) => (Object.keys(r.params ?? {}).length > 1 ? `${f}:${k}` : k)))));
  const paramKeys = [...new Set(params.flatMap((p) => Object.keys(p)))]
    .filter((k) => overridden.has(k) || new Set(params.map((p) => canonicalJson(p[k]))).size > 1)
    .sort();

  const best = new Map<string, number>();
  for (const k of metricKeys) {
    const lower = LOWER_IS_BETTER.test(k);
    let bi = -1;
    metrics.forEach((m, i) => {
      const v = m[k];
      if (typeof v !== 'number' || recs[i]!.status !== 'success') return;
      const cur = bi < 0 ? undefined : (metrics[bi]![k] as number);
      if (cur === undefined || (lower ? v < cur : v > cur)) bi = i;
    });
    if (bi >= 0) best.set(k, bi);
  }

  let order = recs.map((_, i) => i);
  if (args.sortBy) {
    const key = metricKeys.includes(args.sortBy) ? args.sortBy : paramKeys.includes(args.sortBy) ? args.sortBy : undefined;
    if (!key) {
      throw new UserError({ message: `cannot sort by '${args.sortBy}': no such metric or param`, hint: didYouMean(args.sortBy, [...metricKeys, ...paramKeys]) ?? `metrics: ${metricKeys.join(', ') || 'none'}` });
    }
    const src = metricKeys.includes(key) ? metrics : params;
    const lower = LOWER_IS_BETTER.test(key) || src === params;
    order = order.sort((a, b) => {
      const x = src[a]![key];
      const y = src[b]![key];
      if (typeof x !== 'number') return 1;
      if (typeof y !== 'number') return -1;
      return lower ? x - y : y - x;
    });
  }

  if (args.format === 'json') {
    io.out(
      JSON.stringify(
        {
          experiments: order.map((i) => ({
            name: recs[i]!.name,
            status: recs[i]!.status,
            ...(recs[i]!.distributed ? { worker: recs[i]!.distributed!.worker ?? null, jobId: recs[i]!.distributed!.jobId } : {}),
            createdAt: recs[i]!.createdAt,
            durationMs: recs[i]!.durationMs,
            overrides: recs[i]!.overrides,
            params: Object.fromEntries(paramKeys.map((k) => [k, params[i]![k]])),
            metrics: metrics[i],
            ...(recs[i]!.error ? { error: recs[i]!.error } : {}),
          })),
          best: Object.fromEntries([...best].map(([k, i]) => [k, recs[i]!.name])),
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
  const hl = (s: string) => (args.color ? `\x1b[33m${s}\x1b[0m` : args.format === 'text' ? `${s}*` : s);
  const star = (s: string) => (args.color ? `\x1b[1;32m${s} ★\x1b[0m` : `${s} ★`);
  const header = ['Experiment', 'Status', 'Created', ...paramKeys, ...metricKeys];
  const rows = order.map((i) => {
    const r = recs[i]!;
    return [
      r.name,
      statusOf(r),
      r.createdAt.slice(0, 16).replace('T', ' '),
      ...paramKeys.map((k) => {
        const v = formatValue(params[i]![k]);
        return k in baseFlat && canonicalJson(baseFlat[k]) !== canonicalJson(params[i]![k]) ? hl(v) : v;
      }),
      ...metricKeys.map((k) => (best.get(k) === i ? star(formatValue(metrics[i]![k])) : formatValue(metrics[i]![k]))),
    ];
  });
  recs = order.map((i) => recs[i]!);
  io.out(renderTable(header, rows, args.format));
  if (args.format === 'text') io.out(`\n${args.color ? 'highlighted' : '*'}: differs from the workspace's params   ★: best value of the metric`);
  return 0;
}

export function expDiffCommand(io: Io, args: { a: string; b: string; format: TableFormat | 'json' }): number {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const store = new ExpStore(ws.stateDir);
  const a = store.get(args.a);
  const b = store.get(args.b);
  const params = diffFlat(a.params ?? {}, b.params ?? {}, false);
  const metrics = diffFlat(a.metrics ?? {}, b.metrics ?? {}, true);
  if (args.format === 'json') {
    io.out(JSON.stringify({ a: a.name, b: b.name, params, metrics }, null, 2));
    return 0;
  }
  const rows = [
    ...params.map((r) => ['param', `${r.path}:${r.key}`, formatValue(r.old), formatValue(r.new), '']),
    ...metrics.map((r) => ['metric', `${r.path}:${r.key}`, formatValue(r.old), formatValue(r.new), r.change === undefined ? '' : formatChange(r.change)]),
  ];
  io.out(renderTable(['', 'Key', a.name, b.name, 'Change'], rows, args.format));
  return 0;
}

/** Bring an experiment back: its params files, its lock entries, and its outputs from the cache. */
export async function expApplyCommand(io: Io, args: { name: string }): Promise<number> {
  const repoLock = await RepoLock.acquire(path.join(findRoot(io.cwd), STATE_DIR), 'exp apply', 0);
  try {
    const ws = openWorkspace(io.cwd, { checkDeps: false });
    const rec = new ExpStore(ws.stateDir).get(args.name);
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
          throw new UserError({ message: `experiment '${rec.name}' cannot be applied: output '${o.path}' is no longer in the cache`, hint: `'lockstep pull' it from a remote, or rerun it with 'lockstep exp run' and its params` });
        }
      }
    }
    for (const [file, text] of Object.entries(rec.paramsText)) writeFileAtomic(path.join(ws.root, file), text);
    for (const [name, entry] of Object.entries(rec.lock)) if (ws.pipeline.stages.has(name)) ws.lock.set(name, entry);
    ws.lock.write(ws.graph.order);
    for (const [file, text] of Object.entries(rec.metricsText ?? {})) writeFileAtomic(path.join(ws.root, file), text);
    const items = await checkoutOutputs(ws, cache, [], true);
    saveCaches(ws);
    const restored = items.filter((i) => i.outcome === 'restored').length;
    io.out(`applied ${rec.name}: params, pipeline.lock and metrics written; ${restored} output${restored === 1 ? '' : 's'} restored from the cache`);
    return 0;
  } finally {
    repoLock.release();
  }
}

async function fetchRemoteOutputs(io: Io, ws: Workspace, cache: LocalCache, rec: ExpRecord): Promise<void> {
  const outs: { path: string; out: LockedPath }[] = [];
  for (const [name, entry] of Object.entries(rec.lock ?? {})) {
    const decls = ws.pipeline.stages.get(name)?.outs ?? [];
    for (const o of entry.outs) if (decls.find((d) => d.path === o.path)?.cache && (await missingObjects(cache.store, o)).length) outs.push({ path: o.path, out: o });
  }
  if (outs.length === 0) return;
  const [{ remoteFor }, { fetchOutputs }] = await Promise.all([import('../commands/transfer.js'), import('../cache/sync.js')]);
  const { cfg, store } = await remoteFor(ws, rec.distributed!.job.remote);
  try {
    const r = await fetchOutputs(cache, store, outs, { jobs: cfg.jobs });
    for (const f of r.failures) io.err(`✗ ${f.what}: ${f.why}`);
    if (r.transferred) io.out(`fetched ${r.transferred} object${r.transferred === 1 ? '' : 's'} of ${rec.name} from '${store.name}'`);
  } finally {
    await store.close();
  }
}

export function expRemoveCommand(io: Io, args: { names: string[]; all: boolean; queued: boolean }): number {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const store = new ExpStore(ws.stateDir);
  const names = args.all ? store.list().map((r) => r.name) : args.queued ? store.list().filter((r) => r.status === 'queued').map((r) => r.name) : args.names;
  if (!names.length) throw new UserError({ message: 'name the experiments to remove, or pass --all or --queued' });
  for (const n of names) store.remove(n);
  io.out(`removed ${names.length} experiment${names.length === 1 ? '' : 's'}`);
  if (fs.existsSync(store.dir) && fs.readdirSync(store.dir).length === 0) fs.rmdirSync(store.dir);
  return 0;
}
