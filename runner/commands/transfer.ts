import path from 'node:path';
import { openWorkspace, saveCaches, findRoot, STATE_DIR } from '../workspace.js';
import { RepoLock } from '../repo-lock.js';
import { sweepWorkspace } from '../litter.js';
import { openLocalCache } from '../cache/open.js';
import type { SyncOptions } from '../cache/sync.js';
import { fetchOutputsOf, pushOutputs, remoteStatus, type RemoteResult } from '../cache/transfer.js';
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

function finish(
  io: Io,
  verb: string,
  { store: remote, report: r }: RemoteResult,
  { json, extra = {} }: { json: boolean; extra?: Record<string, unknown> },
): number {
  const ok = r.failures.length === 0 && r.unavailable.length === 0;
  if (json) {
    io.out(
      JSON.stringify(
        {
          ok,
          remote: remote.name,
          transferred: r.transferred,
          bytes: r.bytes,
          alreadyThere: r.alreadyThere,
          replaced: r.replaced,
          entriesNotPushed: r.entriesNotPushed,
          failures: r.failures,
          unavailable: r.unavailable,
          ...extra,
        },
        null,
        2,
      ),
    );
  } else {
    for (const f of r.failures) io.err(`✗ ${f.what}: ${f.why}`);
    for (const u of r.unavailable) io.err(`✗ ${u.path}: not in ${u.where}`);
    for (const e of r.entriesNotPushed)
      io.out(`· run-cache entry ${e.fingerprint} (${e.stage}) not pushed: an object it names is neither in the local cache nor on '${remote.name}'`);
    for (const k of r.replaced) io.out(`↻ ${k}: the copy on '${remote.name}' was wrong; uploaded again`);
    io.out(
      `${verb} ${r.transferred} object${r.transferred === 1 ? '' : 's'} (${mb(r.bytes)}) ${verb === 'pushed' ? 'to' : 'from'} '${remote.name}' (${remote.description})${r.alreadyThere ? `; ${r.alreadyThere} already there` : ''}`,
    );
  }
  return ok ? 0 : 1;
}

function finishAll(io: Io, verb: string, results: RemoteResult[], { json, extra = {} }: { json: boolean; extra?: Record<string, unknown> }): number {
  if (!json) return results.map((r) => finish(io, verb, r, { json: false })).reduce((a, b) => a || b, 0);
  // One JSON document: the default remote's report, and those of remotes that outputs name themselves.
  const [first, ...others] = results;
  const bufferIo: Io = { ...io, out: (line: string) => void (captured = line) };
  let captured = '';
  let code = finish(bufferIo, verb, first!, { json: true });
  const doc = JSON.parse(captured) as Record<string, unknown>;
  const more = others.map((o) => {
    code ||= finish(bufferIo, verb, o, { json: true });
    return JSON.parse(captured) as unknown;
  });
  io.out(JSON.stringify({ ...doc, ...extra, ...(more.length ? { otherRemotes: more } : {}) }, null, 2));
  return code;
}

export async function pushCommand(io: Io, args: TransferArgs): Promise<number> {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const cache = openLocalCache(ws.stateDir);
  const { results, skipped } = await pushOutputs(ws, cache, { ...args, progress: progressLine(io, 'pushing') });
  if (!args.json && skipped.length) io.out(`not pushed (push: false): ${skipped.join(', ')}`);
  return finishAll(io, 'pushed', results, { json: args.json, extra: skipped.length ? { notPushed: skipped } : {} });
}

export async function fetchCommand(io: Io, args: TransferArgs, then?: 'checkout'): Promise<number> {
  const repoLock = then ? await RepoLock.acquire(path.join(findRoot(io.cwd), STATE_DIR), 'pull', 0) : undefined;
  try {
    const ws = openWorkspace(io.cwd, { checkDeps: false });
    const cache = openLocalCache(ws.stateDir);
    const { results, items } = await fetchOutputsOf(ws, cache, { ...args, progress: progressLine(io, 'fetching'), checkout: then === 'checkout' });
    if (!then) return finishAll(io, 'fetched', results, { json: args.json });
    sweepWorkspace(ws);
    saveCaches(ws);
    const restored = items.filter((i) => i.outcome === 'restored');
    if (!args.json) for (const i of restored) io.out(`↺ ${i.path}: restored`);
    const code = finishAll(io, 'fetched', results, { json: args.json, extra: { restored: restored.map((i) => i.path) } });
    const refused = items.filter((i) => i.outcome === 'refused');
    if (!args.json) for (const i of refused) io.err(`✗ ${i.path}: ${i.detail}; 'lockstep checkout --force ${i.stage}' discards them`);
    const stillDamaged = items.filter((i) => i.outcome === 'damaged');
    if (!args.json) for (const i of stillDamaged) io.err(`✗ ${i.path}: not restored: ${i.detail}`);
    return code || (refused.length || stillDamaged.length ? 1 : 0);
  } finally {
    repoLock?.release();
  }
}

/** For each cached output the lock records: is it in the local cache, on its remote? (`push: false` outputs: local only.) */
export async function remoteStatusCommand(io: Io, args: { targets: string[]; remote?: string; json: boolean }): Promise<number> {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const cache = openLocalCache(ws.stateDir);
  const { primary: primaryName, remotes, rows } = await remoteStatus(ws, cache, args);
  saveCaches(ws);
  if (args.json) {
    io.out(
      JSON.stringify(
        { remote: primaryName, outputs: rows.map(({ remoteName, ...r }) => ({ ...r, ...(remoteName !== primaryName ? { remoteName } : {}) })) },
        null,
        2,
      ),
    );
    return 0;
  }
  // An output that is never pushed is only expected in the local cache.
  const missing = rows.filter((r) => !r.local || (!r.remote && r.push));
  const where = primaryName ? `on '${primaryName}'${remotes > 1 ? ' (or the remote they name)' : ''}` : 'on the remotes they name';
  if (missing.length === 0) io.out(`All ${rows.length} cached outputs are both in the local cache and ${where}.`);
  for (const r of missing) {
    const where = [!r.local ? 'the local cache' : '', !r.remote && r.push ? `remote '${r.remoteName}'` : ''].filter(Boolean).join(' and ');
    io.out(`${r.stage}: ${r.path}: missing from ${where}`);
  }
  return 0;
}
