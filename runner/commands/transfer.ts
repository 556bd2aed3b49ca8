import fs from 'node:fs';
import path from 'node:path';
import { isWithin } from '../paths.js';
import { openWorkspace, saveCaches, findRoot, STATE_DIR, type Workspace } from '../workspace.js';
import { RepoLock } from '../repo-lock.js';
import { UserError } from '../errors.js';
import { openLocalCache, type LocalCache } from '../cache/open.js';
import { fetchOutputs, fetchRunEntries, newReport, push, type SyncOptions, type SyncReport } from '../cache/sync.js';
import { checkoutOut, missingObjects } from '../cache/checkout.js';
import { objectKey } from '../cache/layout.js';
import { chooseRemote, readRemotesConfig, type RemoteConfig } from '../remote/config.js';
import { openRemote } from '../remote/open.js';
import type { RemoteStore } from '../remote/types.js';
import { checkoutOutputs, lockedOuts, selectPointers } from './checkout.js';
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
}

/** The configured remote, opened. */
export async function remoteFor(ws: Workspace, name: string | undefined): Promise<{ cfg: RemoteConfig; store: RemoteStore }> {
  const cfg = chooseRemote(readRemotesConfig(ws.stateDir), name);
  return { cfg, store: await openRemote(ws.root, cfg) };
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
    io.out(JSON.stringify({ ok, remote: remote.name, transferred: r.transferred, bytes: r.bytes, alreadyThere: r.alreadyThere, failures: r.failures, unavailable: r.unavailable, ...extra }, null, 2));
  } else {
    for (const f of r.failures) io.err(`✗ ${f.what}: ${f.why}`);
    for (const u of r.unavailable) io.err(`✗ ${u.path}: not in ${u.where}`);
    io.out(`${verb} ${r.transferred} object${r.transferred === 1 ? '' : 's'} (${mb(r.bytes)}) ${verb === 'pushed' ? 'to' : 'from'} '${remote.name}' (${remote.description})${r.alreadyThere ? `; ${r.alreadyThere} already there` : ''}`);
  }
  return ok ? 0 : 1;
}

function runEntriesOf(ws: Workspace, cache: LocalCache, targets: readonly string[]): string[] {
  const names = new Set(targets.length ? ws.graph.resolveTargets(targets, ws.root) : ws.graph.order);
  return cache.runs.list().filter((fp) => {
    const r = cache.runs.lookup(fp);
    return r.kind === 'hit' && names.has(r.entry.stage);
  });
}

export async function pushCommand(io: Io, args: TransferArgs): Promise<number> {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const cache = openLocalCache(ws.stateDir);
  const { cfg, store } = await remoteFor(ws, args.remote);
  try {
    if (cfg.readOnly) throw new UserError({ message: `remote '${cfg.name}' is read-only (read_only: true); nothing was pushed` });
    const outs = lockedOuts(ws, args.targets, true, cache.settings.dir).map(({ out }) => ({ path: out.path, out }));
    // A read-only run-cache (untrusted builds) never publishes entries.
    const runs = args.runCache && !cache.runs.trust.readOnly ? runEntriesOf(ws, cache, args.targets) : [];
    const report = await push(cache, store, outs, runs, { jobs: args.jobs ?? cfg.jobs, progress: progressLine(io, 'pushing') });
    return finish(io, 'pushed', store, report, args.json);
  } finally {
    await store.close();
  }
}

export async function fetchCommand(io: Io, args: TransferArgs, then?: 'checkout'): Promise<number> {
  const repoLock = then ? await RepoLock.acquire(path.join(findRoot(io.cwd), STATE_DIR), 'pull', 0) : undefined;
  try {
    const ws = openWorkspace(io.cwd, { checkDeps: false });
    const cache = openLocalCache(ws.stateDir);
    const { cfg, store } = await remoteFor(ws, args.remote);
    try {
      const opts: SyncOptions = { jobs: args.jobs ?? cfg.jobs, progress: progressLine(io, 'fetching') };
      const report = newReport();
      if (args.runCache) await fetchRunEntries(cache, store, opts, report);
      await fetchMd5Pointers(cache, store, selectPointers(ws, args.targets).pointers, report);
      const outs = lockedOuts(ws, args.targets, true, cache.settings.dir).map(({ out }) => ({ path: out.path, out }));
      await fetchOutputs(cache, store, outs, opts, report);
      if (!then) return finish(io, 'fetched', store, report, args.json);
      // Outputs whose objects did not all arrive (or failed verification) are left as they are.
      const items = await checkoutOutputs(ws, cache, args.targets, false);
      saveCaches(ws);
      const restored = items.filter((i) => i.outcome === 'restored');
      if (!args.json) for (const i of restored) io.out(`↺ ${i.path}: restored`);
      const code = finish(io, 'fetched', store, report, args.json, { restored: restored.map((i) => i.path) });
      const refused = items.filter((i) => i.outcome === 'refused');
      if (!args.json) for (const i of refused) io.err(`✗ ${i.path}: ${i.detail}; 'lockstep checkout --force ${i.stage}' discards them`);
      return code || (refused.length ? 1 : 0);
    } finally {
      await store.close();
    }
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

/** For each cached output the lock records: is it in the local cache, on the remote? */
export async function remoteStatusCommand(io: Io, args: { targets: string[]; remote?: string; json: boolean }): Promise<number> {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const cache = openLocalCache(ws.stateDir);
  const { store } = await remoteFor(ws, args.remote);
  try {
    const outs = lockedOuts(ws, args.targets, true, cache.settings.dir);
    const keys = outs.map(({ out }) => objectKey(out.hash));
    const there = await store.existing(keys);
    const rows = [];
    for (const { stage, out } of outs) {
      const local = (await missingObjects(cache.store, out)).length === 0;
      rows.push({ stage, path: out.path, local, remote: there.has(objectKey(out.hash)) });
    }
    saveCaches(ws);
    if (args.json) {
      io.out(JSON.stringify({ remote: store.name, outputs: rows }, null, 2));
      return 0;
    }
    const missing = rows.filter((r) => !r.local || !r.remote);
    if (missing.length === 0) io.out(`All ${rows.length} cached outputs are both in the local cache and on '${store.name}'.`);
    for (const r of missing) {
      const where = [!r.local ? 'the local cache' : '', !r.remote ? `remote '${store.name}'` : ''].filter(Boolean).join(' and ');
      io.out(`${r.stage}: ${r.path}: missing from ${where}`);
    }
    return 0;
  } finally {
    await store.close();
  }
}
