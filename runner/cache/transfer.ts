import fs from 'node:fs';
import path from 'node:path';
import { isWithin } from '../paths.js';
import { sweepWorkspace } from '../litter.js';
import type { Workspace } from '../workspace.js';
import { UserError } from '../errors.js';
import type { LocalCache } from './open.js';
import { fetchOutputs, fetchRunEntries, newReport, push, remoteFetcher, type SyncOptions, type SyncReport } from './sync.js';
import type { Fetcher } from './stage-cache.js';
import { checkoutOut, checkoutOutputs, lockedOuts, missingObjects, selectPointers, type CheckoutItem } from './checkout.js';
import { objectKey } from './layout.js';
import { fetchMd5, lookupMd5 } from './dvc-remote.js';
import type { RemoteConfig } from '../remote/config.js';
import { remoteFor } from '../remote/open.js';
import type { RemoteStore } from '../remote/types.js';
import type { LockedPath } from '../lockfile.js';
import type { Stage } from '../stage.js';
import { findPointers, type PointerFile } from '../tracked.js';

/**
 * push, fetch, pull and remote status for a workspace: which outputs (and
 * run-cache entries, and `.dvc`-tracked data) travel, to and from which
 * remote. Moving the objects themselves, verified both ways, is sync.ts.
 */

/** An output on its way to or from a remote: its path and what pipeline.lock records for it. */
interface OutputRef {
  readonly path: string;
  readonly out: LockedPath;
}

/** One remote's part of a transfer. */
export interface RemoteResult {
  readonly store: RemoteStore;
  readonly report: SyncReport;
}

export interface TransferOptions {
  readonly targets: readonly string[];
  /** -r: the remote to use instead of the default (outputs naming another remote are then left out). */
  readonly remote?: string;
  /** Parallel transfers (default: each remote's configured `jobs`). */
  readonly jobs?: number;
  /** Include run-cache entries. */
  readonly runCache: boolean;
  readonly progress?: SyncOptions['progress'];
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
function outputsByRemote(
  ws: Workspace,
  cache: LocalCache,
  opts: {
    targets: readonly string[];
    chosen: string | undefined;
    forPush: boolean;
  },
): { groups: Map<string | undefined, OutputRef[]>; skipped: string[] } {
  const groups = new Map<string | undefined, OutputRef[]>([[undefined, []]]);
  const skipped: string[] = [];
  // Data tracked by .dvc pointers travels with the outputs (it has no stage: default remote, always pushed).
  for (const { stage, out } of lockedOuts(ws, opts.targets, true, cache.settings.dir)) {
    const decl = ws.pipeline.stages.get(stage)?.outs.find((o) => o.path === out.path);
    if (opts.forPush && decl?.push === false) {
      skipped.push(out.path);
      continue;
    }
    const own = decl?.remote;
    if (opts.chosen !== undefined && own !== undefined && own !== opts.chosen) continue;
    const key = own !== undefined && own !== opts.chosen ? own : undefined;
    const list = groups.get(key) ?? groups.set(key, []).get(key)!;
    list.push({ path: out.path, out });
  }
  return { groups, skipped };
}

/** Each remote's part of a transfer in turn: opened, used, closed. */
async function eachRemote(
  ws: Workspace,
  chosen: string | undefined,
  groups: Map<string | undefined, OutputRef[]>,
  work: (cfg: RemoteConfig, store: RemoteStore, outs: OutputRef[], primary: boolean) => Promise<SyncReport>,
): Promise<RemoteResult[]> {
  const done: RemoteResult[] = [];
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

/** Upload the selected outputs (and run-cache entries) to their remotes. `skipped`: outputs with `push: false`. */
export async function pushOutputs(
  ws: Workspace,
  cache: LocalCache,
  opts: TransferOptions & { verify?: boolean },
): Promise<{ results: RemoteResult[]; skipped: string[] }> {
  const { groups, skipped } = outputsByRemote(ws, cache, {
    targets: opts.targets,
    chosen: opts.remote,
    forPush: true,
  });
  const results = await eachRemote(ws, opts.remote, groups, async (cfg, store, outs, primary) => {
    if (cfg.readOnly)
      throw new UserError({
        message: `remote '${cfg.name}' is read-only (read_only: true); nothing was pushed`,
      });
    // Run-cache entries go to the default (or -r) remote; a read-only run-cache (untrusted builds) never publishes them.
    const runs = primary && opts.runCache && !cache.runs.trust.readOnly ? runEntriesOf(ws, cache, opts.targets, (st) => entryFitsRemote(st, opts.remote)) : [];
    return push(cache, store, outs, runs, {
      jobs: opts.jobs ?? cfg.jobs,
      progress: opts.progress,
      verify: opts.verify,
    });
  });
  return { results, skipped };
}

/**
 * Download what the selected outputs need into the local cache; with
 * `checkout`, then put them in the workspace. An object found damaged at
 * checkout is quarantined, fetched once more and checked out again. Outputs
 * whose objects did not all arrive (or failed verification) are left as they are.
 */
export async function fetchOutputsOf(
  ws: Workspace,
  cache: LocalCache,
  opts: TransferOptions & { checkout?: boolean },
): Promise<{ results: RemoteResult[]; items: CheckoutItem[] }> {
  const { groups } = outputsByRemote(ws, cache, {
    targets: opts.targets,
    chosen: opts.remote,
    forPush: false,
  });
  const retry = new Map<string, { outs: OutputRef[]; opts: SyncOptions; report: SyncReport }>();
  const results = await eachRemote(ws, opts.remote, groups, async (cfg, store, outs, primary) => {
    const sync: SyncOptions = {
      jobs: opts.jobs ?? cfg.jobs,
      progress: opts.progress,
    };
    const report = newReport();
    if (primary && opts.runCache) await fetchRunEntries(cache, store, sync, report);
    // Data a DVC repository tracks by md5 comes from the default remote's DVC layout.
    if (primary) await fetchMd5Pointers(cache, store, selectPointers(ws, opts.targets).pointers, report);
    await fetchOutputs(cache, store, outs, { ...sync, report });
    if (opts.checkout) retry.set(cfg.name, { outs, opts: sync, report });
    return report;
  });
  if (!opts.checkout) return { results, items: [] };
  sweepWorkspace(ws, cache.settings.dir);
  let items = await checkoutOutputs(ws, cache, { targets: opts.targets });
  const damaged = items.filter((i) => i.outcome === 'damaged').map((i) => i.path);
  if (damaged.length) {
    for (const [name, again] of retry) {
      const { store } = await remoteFor(ws, name);
      try {
        await fetchOutputs(
          cache,
          store,
          again.outs.filter((o) => damaged.includes(o.path)),
          { ...again.opts, report: again.report },
        );
      } finally {
        await store.close();
      }
    }
    const retried = await checkoutOutputs(ws, cache, { targets: damaged });
    items = items.map((i) => retried.find((r) => r.path === i.path) ?? i);
  }
  return { results, items };
}

/** One cached output the lock records: is it whole in the local cache, on its remote? */
export interface RemoteStatusRow {
  readonly stage: string;
  readonly path: string;
  readonly remoteName: string;
  readonly local: boolean;
  readonly remote: boolean;
  /** false for a `push: false` output: only expected in the local cache. */
  readonly push: boolean;
}

/** For each cached output the lock records: is it in the local cache, on its remote? `primary`: the default (or -r) remote's name. */
export async function remoteStatus(
  ws: Workspace,
  cache: LocalCache,
  opts: { targets: readonly string[]; remote?: string },
): Promise<{ primary: string; remotes: number; rows: RemoteStatusRow[] }> {
  const { groups } = outputsByRemote(ws, cache, {
    targets: opts.targets,
    chosen: opts.remote,
    forPush: false,
  });
  const stageOf = new Map(lockedOuts(ws, opts.targets, true, cache.settings.dir).map(({ stage, out }) => [out.path, stage]));
  const rows: RemoteStatusRow[] = [];
  let primaryName = '';
  await eachRemote(ws, opts.remote, groups, async (_cfg, store, outs, primary) => {
    if (primary) primaryName = store.name;
    const there = await store.existing(outs.map(({ out }) => objectKey(out.hash)));
    for (const { path: p, out } of outs) {
      const stage = stageOf.get(p)!;
      const push = ws.pipeline.stages.get(stage)?.outs.find((o) => o.path === p)?.push !== false;
      const local = (await missingObjects(cache.store, out)).length === 0;
      rows.push({
        stage,
        path: p,
        remoteName: store.name,
        local,
        remote: there.has(objectKey(out.hash)),
        push,
      });
    }
    return newReport();
  });
  return { primary: primaryName, remotes: groups.size, rows };
}

/**
 * What `repro --pull` fetches with: the default (or -r) remote, then the
 * remotes outputs name with `remote: NAME` for whatever is still missing.
 * Run-cache entries come from the default remote only.
 */
export async function pullFetcher(
  ws: Workspace,
  cache: LocalCache,
  chosen: string | undefined,
  warn: (message: string) => void,
): Promise<{ fetcher: Fetcher; close: () => Promise<void> }> {
  const primary = await remoteFor(ws, chosen);
  const named = new Set(
    [...ws.pipeline.stages.values()].flatMap((st) =>
      st.outs.flatMap((o) => (o.remote !== undefined && chosen === undefined && o.remote !== primary.cfg.name ? [o.remote] : [])),
    ),
  );
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

/**
 * `repro --pull`: data tracked by `.dvc` pointers that the selected stages
 * depend on and that is not in the workspace is fetched and checked out.
 * What cannot be fetched is said once (`warn`); the stage then fails naming the pointer.
 */
export async function pullTrackedDeps(
  ws: Workspace,
  cache: LocalCache,
  store: RemoteStore,
  opts: {
    jobs: number;
    targets: readonly string[];
    pulled: (path: string) => void;
    warn: (message: string) => void;
  },
): Promise<void> {
  const { selectStages } = await import('../executor.js');
  const selected = selectStages(ws, {
    targets: opts.targets,
    single: false,
    downstream: false,
  });
  const deps = [...selected].flatMap((n) =>
    ws.pipeline.stages
      .get(n)!
      .deps.filter((d) => !d.external)
      .map((d) => d.path),
  );
  const needed = (p: string) => deps.some((d) => isWithin(p, d) || isWithin(d, p));
  const md5 = findPointers(ws.root).filter((p) => p.outs.some((o) => o.algo === 'md5' && needed(o.path) && !fs.existsSync(path.join(ws.root, o.path))));
  const early = newReport();
  try {
    await fetchMd5Pointers(cache, store, md5, early);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
  }
  for (const f of early.failures) opts.warn(`${f.what}: ${f.why}`);
  const wanted = lockedOuts(ws, [], true, cache.settings.dir).filter(
    ({ stage, out }) =>
      stage.endsWith('.dvc') && deps.some((d) => isWithin(out.path, d) || isWithin(d, out.path)) && !fs.existsSync(path.join(ws.root, out.path)),
  );
  if (!wanted.length) return;
  let report: SyncReport;
  try {
    report = await fetchOutputs(
      cache,
      store,
      wanted.map(({ out }) => ({ path: out.path, out })),
      { jobs: opts.jobs },
    );
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    opts.warn(`${e.message}; tracked data was not pulled`);
    return;
  }
  for (const f of report.failures) opts.warn(`${f.what}: ${f.why}`);
  for (const u of report.unavailable) opts.warn(`${u.path}: not in ${u.where}`);
  for (const { out } of wanted) {
    if ((await missingObjects(cache.store, out)).length) continue;
    await checkoutOut(cache.store, ws.root, out, cache.settings.link);
    opts.pulled(out.path);
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
