import fs from 'node:fs';
import path from 'node:path';
import { isWithin } from '../paths.js';
import { openWorkspace, saveCaches, findRoot, STATE_DIR, type Workspace } from '../workspace.js';
import { RepoLock } from '../repo-lock.js';
import { sweepWorkspace } from '../litter.js';
import { UserError } from '../errors.js';
import { openLocalCache, type LocalCache } from '../cache/open.js';
import { fetchOutputs, fetchRunEntries, newReport, push, remoteFetcher, type SyncOptions, type SyncReport } from '../cache/sync.js';
import type { Fetcher } from '../cache/stage-cache.js';
import { checkoutOut, missingObjects } from '../cache/checkout.js';
import { objectKey } from '../cache/layout.js';
import type { RemoteConfig } from '../remote/config.js';
import { remoteFor } from '../remote/open.js';
// `repro --pull` (commands/repro.ts) reaches the remote through this module.
export { remoteFor };
import type { RemoteStore } from '../remote/types.js';
import type { LockedPath } from '../lockfile.js';
import type { Stage } from '../stage.js';
import { checkoutOutputs, lockedOuts, selectPointers } from '../cache/checkout.js';
import { fetchMd5, lookupMd5 } from '../cache/dvc-remote.js';
import { findPointers, type PointerFile } from '../tracked.js';
import type { Io } from '../cli-io.js';

export interface TransferArgs {
  readonly targets: string[];
  readonly remote?: string;
  readonly jobs?: number;
  /** Include run-cache entries (default on; --no-run-cache turns it off). */
  readonly runCache: boolean;
  readonly json: boolean;
  /** push: download and hash every remote copy the remote says it has (not only compare sizes). */
  readonly verify?: boolean;
}

function mb(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MB`;
}

/** A progress line on a terminal; nothing when output is a pipe or a CI log. */
function progressLine(io: Io, verb: string): SyncOptions['progress'] {
  if (!io.isTTY) return undefined;
  let last = 0;
  return (done, total, bytes) => {
    const now = Date.now();
    if (now - last < 100 && done < total) return;
    last = now;
    process.stderr.write(`\r${verb} ${done}/${total} objects, ${mb(bytes)}${done === total ? '\n' : ''}`);
  };
}

function finish(io: Io, verb: string, remote: RemoteStore, r: SyncReport, json: boolean, extra: Record<string, unknown> = {}): number {
  const ok = r.failures.length === 0 && r.unavailable.length === 0;
  if (json) {
    io.out(JSON.stringify({ ok, remote: remote.name, transferred: r.transferred, bytes: r.bytes, alreadyThere: r.alreadyThere, replaced: r.replaced, failures: r.failures, unavailable: r.unavailable, ...extra }, null, 2));
  } else {
    for (const f of r.failures) io.err(`✗ ${f.what}: ${f.why}`);
    for (const u of r.unavailable) io.err(`✗ ${u.path}: not in ${u.where}`);
    for (const k of r.replaced) io.out(`↻ ${k}: the copy on '${remote.name}' was wrong; uploaded again`);
    io.out(`${verb} ${r.transferred} object${r.transferred === 1 ? '' : 's'} (${mb(r.bytes)}) ${verb === 'pushed' ? 'to' : 'from'} '${remote.name}' (${remote.description})${r.alreadyThere ? `; ${r.alreadyThere} already there` : ''}`);
  }
  return ok ? 0 : 1;
}

/**
 * A run-cache entry is only useful whole, with every output it names; so the
 * entry of a stage with a `push: false` output, or one kept on another remote,
 * is not pushed to this one (it would upload what must stay out, or dangle).
 */
function entryFitsRemote(stage: Stage, chosen: string | undefined): boolean {
  return stage.outs.every((o) => o.push && (o.remote === undefined || o.remote === chosen));
}

function runEntriesOf(ws: Workspace, cache: LocalCache, targets: readonly string[], keep: (stage: Stage) => boolean = () => true): string[] {
  const names = new Set((targets.length ? ws.graph.resolveTargets(targets, ws.root) : ws.graph.order).filter((n) => keep(ws.pipeline.stages.get(n)!)));
  return cache.runs.list().filter((fp) => {
    const r = cache.runs.lookup(fp);
    return r.kind === 'hit' && names.has(r.entry.stage);
  });
}

/**
 * Which remote each cached output goes to, as DVC decides: an output's own
 * `remote: NAME`, else the remote given with -r, else the default. With -r,
 * outputs that name another remote are left out; for push, so are outputs
 * with `push: false`. Groups come back default (or -r) remote first.
 */
export function outputsByRemote(ws: Workspace, targets: readonly string[], chosen: string | undefined, forPush: boolean, cacheDir?: string): { groups: Map<string | undefined, { path: string; out: LockedPath }[]>; skipped: string[] } {
  const groups = new Map<string | undefined, { path: string; out: LockedPath }[]>([[undefined, []]]);
  const skipped: string[] = [];
  // Data tracked by .dvc pointers travels with the outputs (it has no stage: default remote, always pushed).
  for (const { stage, out } of lockedOuts(ws, targets, true, cacheDir)) {
    const decl = ws.pipeline.stages.get(stage)?.outs.find((o) => o.path === out.path);
    if (forPush && decl?.push === false) {
      skipped.push(out.path);
      continue;
    }
    const own = decl?.remote;
    if (chosen !== undefined && own !== undefined && own !== chosen) continue;
    const key = own !== undefined && own !== chosen ? own : undefined;
    const list = groups.get(key) ?? groups.set(key, []).get(key)!;
    list.push({ path: out.path, out });
  }
  return { groups, skipped };
}

/**
 * What `repro --pull` fetches with: the default (or -r) remote, then the
 * remotes outputs name with `remote: NAME` for whatever is still missing.
 * Run-cache entries come from the default remote only.
 */
export async function pullFetcher(ws: Workspace, cache: LocalCache, chosen: string | undefined, warn: (message: string) => void): Promise<{ fetcher: Fetcher; close: () => Promise<void> }> {
  const primary = await remoteFor(ws, chosen);
  const named = new Set([...ws.pipeline.stages.values()].flatMap((st) => st.outs.flatMap((o) => (o.remote !== undefined && chosen === undefined && o.remote !== primary.cfg.name ? [o.remote] : []))));
  const stores = [primary];
  try {
    for (const n of named) stores.push(await remoteFor(ws, n));
  } catch (e) {
    await Promise.all(stores.map((r) => r.store.close()));
    throw e;
  }
  const fetchers = stores.map((r) => remoteFetcher(cache, r.store, { jobs: r.cfg.jobs }, warn));
  return {
    fetcher: {
      objects: async (hashes) => {
        let need = [...hashes];
        for (const f of fetchers) {
          if (need.length === 0) break;
          await f.objects(need);
          need = need.filter((h) => !cache.store.has(h));
        }
      },
      runEntry: (fp) => fetchers[0]!.runEntry(fp),
    },
    close: async () => void (await Promise.all(stores.map((r) => r.store.close()))),
  };
}

/** One remote's part of a transfer: opened, used, closed; its report and a summary line. */
async function eachRemote(
  ws: Workspace,
  chosen: string | undefined,
  groups: Map<string | undefined, { path: string; out: LockedPath }[]>,
  work: (cfg: RemoteConfig, store: RemoteStore, outs: { path: string; out: LockedPath }[], primary: boolean) => Promise<SyncReport>,
): Promise<{ store: RemoteStore; report: SyncReport }[]> {
  const done: { store: RemoteStore; report: SyncReport }[] = [];
  for (const [name, outs] of groups) {
    const primary = name === undefined;
    let opened: Awaited<ReturnType<typeof remoteFor>>;
    try {
      opened = await remoteFor(ws, name ?? chosen);
    } catch (e) {
      // Every output names its own remote and there is no default: nothing needs one.
      if (primary && outs.length === 0 && groups.size > 1 && e instanceof UserError) continue;
      throw e;
    }
    const { cfg, store } = opened;
    try {
      done.push({ store, report: await work(cfg, store, outs, primary) });
    } finally {
      await store.close();
    }
  }
  return done;
}

function finishAll(io: Io, verb: string, results: { store: RemoteStore; report: SyncReport }[], json: boolean, extra: Record<string, unknown> = {}): number {
  if (!json) return results.map((r) => finish(io, verb, r.store, r.report, false)).reduce((a, b) => a || b, 0);
  // One JSON document: the default remote's report, and those of remotes that outputs name themselves.
  const [first, ...others] = results;
  const bufferIo: Io = { ...io, out: (line: string) => void (captured = line) };
  let captured = '';
  let code = finish(bufferIo, verb, first!.store, first!.report, true);
  const doc = JSON.parse(captured) as Record<string, unknown>;
  const more = others.map((o) => {
    code ||= finish(bufferIo, verb, o.store, o.report, true);
    return JSON.parse(captured) as unknown;
  });
  io.out(JSON.stringify({ ...doc, ...extra, ...(more.length ? { otherRemotes: more } : {}) }, null, 2));
  return code;
}

export async function pushCommand(io: Io, args: TransferArgs): Promise<number> {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const cache = openLocalCache(ws.stateDir);
  const { groups, skipped } = outputsByRemote(ws, args.targets, args.remote, true, cache.settings.dir);
  const results = await eachRemote(ws, args.remote, groups, async (cfg, store, outs, primary) => {
    if (cfg.readOnly) throw new UserError({ message: `remote '${cfg.name}' is read-only (read_only: true); nothing was pushed` });
    // Run-cache entries go to the default (or -r) remote; a read-only run-cache (untrusted builds) never publishes them.
    const runs = primary && args.runCache && !cache.runs.trust.readOnly ? runEntriesOf(ws, cache, args.targets, (st) => entryFitsRemote(st, args.remote)) : [];
    return push(cache, store, outs, runs, { jobs: args.jobs ?? cfg.jobs, progress: progressLine(io, 'pushing'), verify: args.verify });
  });
  if (!args.json && skipped.length) io.out(`not pushed (push: false): ${skipped.join(', ')}`);
  return finishAll(io, 'pushed', results, args.json, skipped.length ? { notPushed: skipped } : {});
}

export async function fetchCommand(io: Io, args: TransferArgs, then?: 'checkout'): Promise<number> {
  const repoLock = then ? await RepoLock.acquire(path.join(findRoot(io.cwd), STATE_DIR), 'pull', 0) : undefined;
  try {
    const ws = openWorkspace(io.cwd, { checkDeps: false });
    const cache = openLocalCache(ws.stateDir);
    const { groups } = outputsByRemote(ws, args.targets, args.remote, false, cache.settings.dir);
    const retry = new Map<string, { outs: { path: string; out: LockedPath }[]; opts: SyncOptions; report: SyncReport }>();
    const results = await eachRemote(ws, args.remote, groups, async (cfg, store, outs, primary) => {
      const opts: SyncOptions = { jobs: args.jobs ?? cfg.jobs, progress: progressLine(io, 'fetching') };
      const report = newReport();
      if (primary && args.runCache) await fetchRunEntries(cache, store, opts, report);
      // Data a DVC repository tracks by md5 comes from the default remote's DVC layout.
      if (primary) await fetchMd5Pointers(cache, store, selectPointers(ws, args.targets).pointers, report);
      await fetchOutputs(cache, store, outs, opts, report);
      // A local object that failed verification at checkout is quarantined: fetch a good copy and try once more.
      if (then) retry.set(cfg.name, { outs, opts, report });
      return report;
    });
    if (!then) return finishAll(io, 'fetched', results, args.json);
    // Outputs whose objects did not all arrive (or failed verification) are left as they are.
    sweepWorkspace(ws, cache.settings.dir);
    let items = await checkoutOutputs(ws, cache, { targets: args.targets });
    const damaged = items.filter((i) => i.outcome === 'damaged').map((i) => i.path);
    if (damaged.length) {
      for (const [name, again] of retry) {
        const { store } = await remoteFor(ws, name);
        try {
          await fetchOutputs(cache, store, again.outs.filter((o) => damaged.includes(o.path)), again.opts, again.report);
        } finally {
          await store.close();
        }
      }
      const retried = await checkoutOutputs(ws, cache, { targets: damaged });
      items = items.map((i) => retried.find((r) => r.path === i.path) ?? i);
    }
    sweepWorkspace(ws);
    saveCaches(ws);
    const restored = items.filter((i) => i.outcome === 'restored');
    if (!args.json) for (const i of restored) io.out(`↺ ${i.path}: restored`);
    const code = finishAll(io, 'fetched', results, args.json, { restored: restored.map((i) => i.path) });
    const refused = items.filter((i) => i.outcome === 'refused');
    if (!args.json) for (const i of refused) io.err(`✗ ${i.path}: ${i.detail}; 'lockstep checkout --force ${i.stage}' discards them`);
    const stillDamaged = items.filter((i) => i.outcome === 'damaged');
    if (!args.json) for (const i of stillDamaged) io.err(`✗ ${i.path}: not restored: ${i.detail}`);
    return code || (refused.length || stillDamaged.length ? 1 : 0);
  } finally {
    repoLock?.release();
  }
}

/**
 * `repro --pull`: data tracked by `.dvc` pointers that the selected stages
 * depend on and that is not in the workspace is fetched and checked out.
 * What cannot be fetched is said once; the stage then fails naming the pointer.
 */
export async function pullTrackedDeps(io: Io, ws: Workspace, cache: LocalCache, store: RemoteStore, jobs: number, targets: readonly string[]): Promise<void> {
  const { selectStages } = await import('../executor.js');
  const selected = selectStages(ws, { targets, single: false, downstream: false });
  const deps = [...selected].flatMap((n) => ws.pipeline.stages.get(n)!.deps.filter((d) => !d.external).map((d) => d.path));
  const needed = (p: string) => deps.some((d) => isWithin(p, d) || isWithin(d, p));
  const md5 = findPointers(ws.root).filter((p) => p.outs.some((o) => o.algo === 'md5' && needed(o.path) && !fs.existsSync(path.join(ws.root, o.path))));
  const early = newReport();
  try {
    await fetchMd5Pointers(cache, store, md5, early);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
  }
  for (const f of early.failures) io.err(`warning: ${f.what}: ${f.why}`);
  const wanted = lockedOuts(ws, [], true, cache.settings.dir).filter(({ stage, out }) => stage.endsWith('.dvc') && deps.some((d) => isWithin(out.path, d) || isWithin(d, out.path)) && !fs.existsSync(path.join(ws.root, out.path)));
  if (!wanted.length) return;
  let report: SyncReport;
  try {
    report = await fetchOutputs(cache, store, wanted.map(({ out }) => ({ path: out.path, out })), { jobs });
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    io.err(`warning: ${e.message}; tracked data was not pulled`);
    return;
  }
  for (const f of report.failures) io.err(`warning: ${f.what}: ${f.why}`);
  for (const u of report.unavailable) io.err(`warning: ${u.path}: not in ${u.where}`);
  for (const { out } of wanted) {
    if ((await missingObjects(cache.store, out)).length) continue;
    await checkoutOut(cache.store, ws.root, out, cache.settings.link);
    io.out(`↺ ${out.path}: pulled`);
  }
}

/**
 * Data a DVC repository tracks by md5, fetched from the DVC remote's own
 * layout (files/md5/…) into our cache; once there it is pulled, checked out
 * and pushed like everything else.
 */
async function fetchMd5Pointers(cache: LocalCache, store: RemoteStore, pointers: readonly PointerFile[], report: SyncReport): Promise<void> {
  for (const p of pointers) {
    for (const o of p.outs) {
      if (o.algo !== 'md5') continue;
      const known = lookupMd5(cache.settings.dir, o.hash);
      if (known && !(await missingObjects(cache.store, { hash: known })).length) continue;
      try {
        await fetchMd5(store, cache.store, cache.settings.dir, o.hash);
        report.transferred++;
      } catch (e) {
        if (e instanceof UserError) throw e;
        report.failures.push({ what: o.path, why: (e as Error).message });
      }
    }
  }
}

/** For each cached output the lock records: is it in the local cache, on its remote? (`push: false` outputs: local only.) */
export async function remoteStatusCommand(io: Io, args: { targets: string[]; remote?: string; json: boolean }): Promise<number> {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const cache = openLocalCache(ws.stateDir);
  const { groups } = outputsByRemote(ws, args.targets, args.remote, false, cache.settings.dir);
  const stageOf = new Map(lockedOuts(ws, args.targets, true, cache.settings.dir).map(({ stage, out }) => [out.path, stage]));
  const rows: { stage: string; path: string; remoteName: string; local: boolean; remote: boolean; push: boolean }[] = [];
  let primaryName = '';
  await eachRemote(ws, args.remote, groups, async (_cfg, store, outs, primary) => {
    if (primary) primaryName = store.name;
    const there = await store.existing(outs.map(({ out }) => objectKey(out.hash)));
    for (const { path: p, out } of outs) {
      const stage = stageOf.get(p)!;
      const push = ws.pipeline.stages.get(stage)?.outs.find((o) => o.path === p)?.push !== false;
      const local = (await missingObjects(cache.store, out)).length === 0;
      rows.push({ stage, path: p, remoteName: store.name, local, remote: there.has(objectKey(out.hash)), push });
    }
    return newReport();
  });
  saveCaches(ws);
  if (args.json) {
    io.out(JSON.stringify({ remote: primaryName, outputs: rows.map(({ remoteName, ...r }) => ({ ...r, ...(remoteName !== primaryName ? { remoteName } : {}) })) }, null, 2));
    return 0;
  }
  // An output that is never pushed is only expected in the local cache.
  const missing = rows.filter((r) => !r.local || (!r.remote && r.push));
  const where = primaryName ? `on '${primaryName}'${groups.size > 1 ? ' (or the remote they name)' : ''}` : 'on the remotes they name';
  if (missing.length === 0) io.out(`All ${rows.length} cached outputs are both in the local cache and ${where}.`);
  for (const r of missing) {
    const where = [!r.local ? 'the local cache' : '', !r.remote && r.push ? `remote '${r.remoteName}'` : ''].filter(Boolean).join(' and ');
    io.out(`${r.stage}: ${r.path}: missing from ${where}`);
  }
  return 0;
}
