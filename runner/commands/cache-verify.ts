import fs from 'node:fs';
import path from 'node:path';
import { openWorkspace, saveCaches, findRoot, STATE_DIR, type Workspace } from '../workspace.js';
import { RepoLock } from '../repo-lock.js';
import { UserError } from '../errors.js';
import { openLocalCache, type LocalCache } from '../cache/open.js';
import { isDirHash } from '../cache/layout.js';
import { EXIT_DAMAGED_CACHE } from '../cache/object-store.js';
import { fetchObjects, newReport } from '../cache/sync.js';
import { chooseRemote, readRemotesConfig } from '../remote/config.js';
import { openRemote } from '../remote/open.js';
import type { LockedPath } from '../lockfile.js';
import type { ManifestEntry } from '../hash/tree.js';
import type { Io } from '../cli-io.js';

/**
 * `lockstep cache verify [--repair]`: hash every object in the local cache
 * (file objects against their names, manifests parsed and hashed) and report
 * the damaged ones, named by the outputs that use them. `--repair` moves each
 * damaged object to quarantine/ and puts a good copy in its place: from a
 * workspace file that has that content (no network), else from the remote.
 */

export interface CacheVerifyArgs {
  readonly repair: boolean;
  readonly json: boolean;
  /** The remote to repair from (default: the configured default). */
  readonly remote?: string;
}

export interface DamagedReport {
  readonly hash: string;
  readonly problem: string;
  /** Outputs (or files inside directory outputs) in pipeline.lock that use it. */
  readonly usedBy: string[];
  /** With --repair: where the good copy came from, or why there is none. */
  repairedFrom?: 'workspace' | 'remote';
  movedTo?: string;
  notRepaired?: string;
  /** Quarantined by an earlier command, not by this check. */
  earlier?: true;
}

/** Hashes in quarantine/ (`<hash>` or `<hash>.<when>`), with where each lies. */
function quarantinedEarlier(cache: LocalCache): Map<string, string> {
  const found = new Map<string, string>();
  let names: string[];
  try {
    names = fs.readdirSync(cache.store.quarantineDir).sort();
  } catch {
    return found;
  }
  for (const n of names) {
    const m = /^([0-9a-f]{16}(?:\.dir)?)(?:\.|$)/.exec(n);
    if (m && !found.has(m[1]!)) found.set(m[1]!, path.join(cache.store.quarantineDir, n));
  }
  return found;
}

export async function cacheVerifyCommand(io: Io, args: CacheVerifyArgs): Promise<number> {
  // Only a repair writes to the cache; checking is read-only and may run beside anything.
  const lock = args.repair ? await RepoLock.acquire(path.join(findRoot(io.cwd), STATE_DIR), 'cache verify --repair', 0) : undefined;
  try {
    const ws = openWorkspace(io.cwd, { checkDeps: false });
    const cache = openLocalCache(ws.stateDir);
    const hashes = cache.store.list().sort();
    const damaged: DamagedReport[] = [];
    for (const hash of hashes) {
      const problem = await cache.store.problemWith(hash);
      if (problem) damaged.push({ hash, problem, usedBy: [] });
    }
    const names = await usersOf(ws, cache);
    for (const d of damaged) d.usedBy.push(...(names.get(d.hash) ?? []));
    // Objects moved aside earlier (by checkout, repro or push) that the lock still needs and nothing has replaced.
    for (const [hash, movedTo] of quarantinedEarlier(cache)) {
      if (cache.store.has(hash) || !names.has(hash)) continue;
      damaged.push({ hash, problem: 'was found damaged earlier and quarantined; the cache has no good copy yet', usedBy: names.get(hash)!, movedTo, earlier: true });
    }
    let remoteNote: string | undefined;
    if (args.repair && damaged.length) remoteNote = await repair(ws, cache, damaged, args.remote);
    saveCaches(ws);
    const remaining = damaged.filter((d) => !d.repairedFrom);
    if (args.json) {
      io.out(JSON.stringify({ ok: remaining.length === 0, objects: hashes.length, damaged }, null, 2));
    } else {
      for (const d of damaged) {
        const used = d.usedBy.length ? ` (${d.usedBy.slice(0, 3).join(', ')}${d.usedBy.length > 3 ? `, … ${d.usedBy.length - 3} more` : ''})` : ' (no output in pipeline.lock uses it)';
        io.err(`✗ object ${d.hash}${used} ${d.problem}`);
        if (d.movedTo) io.err(`    ${d.earlier ? 'it lies in' : 'moved to'} ${path.relative(io.cwd, d.movedTo)}`);
        if (d.repairedFrom) io.out(`↻ ${d.hash}: repaired from ${d.repairedFrom === 'workspace' ? 'a workspace file with that content' : remoteNote}`);
        else if (d.notRepaired) io.err(`    not repaired: ${d.notRepaired}`);
      }
      const fixed = damaged.length - remaining.length;
      const now = damaged.filter((d) => !d.earlier).length;
      const earlier = damaged.length - now;
      io.out(
        `verified ${hashes.length} object${hashes.length === 1 ? '' : 's'}: ${now ? `${now} damaged` : 'all intact'}` +
          (earlier ? `; ${earlier} needed object${earlier === 1 ? ' was' : 's were'} quarantined earlier and ${earlier === 1 ? 'has' : 'have'} no good copy` : '') +
          (args.repair && damaged.length ? `; ${fixed} repaired` : '') +
          (remaining.length && !args.repair ? `; 'lockstep cache verify --repair' moves damaged objects aside and fetches good copies` : ''),
      );
    }
    return remaining.length ? EXIT_DAMAGED_CACHE : 0;
  } finally {
    lock?.release();
  }
}

/** Which outputs in pipeline.lock use each object (a directory's files as `dir/relpath`). */
async function usersOf(ws: Workspace, cache: LocalCache): Promise<Map<string, string[]>> {
  const users = new Map<string, string[]>();
  const note = (hash: string, name: string) => {
    const list = users.get(hash) ?? [];
    if (!list.includes(name)) list.push(name);
    users.set(hash, list);
  };
  for (const name of ws.graph.order) {
    for (const o of ws.lock.get(name)?.outs ?? []) {
      note(o.hash, o.path);
      if (!isDirHash(o.hash)) continue;
      for (const e of (await manifestOf(ws, cache, o)) ?? []) note(e.hash, `${o.path}/${e.relpath}`);
    }
  }
  return users;
}

/**
 * A directory output's manifest: from the cache when it verifies (a mere check
 * must not quarantine anything), else from the workspace when the folder there
 * still has the recorded content.
 */
async function manifestOf(ws: Workspace, cache: LocalCache, o: LockedPath): Promise<readonly ManifestEntry[] | undefined> {
  if (cache.store.has(o.hash) && !(await cache.store.problemWith(o.hash))) return cache.store.readManifest(o.hash);
  const now = await ws.hasher.hashPath(path.join(ws.root, o.path));
  return now.kind === 'dir' && now.hash === o.hash ? now.manifest : undefined;
}

/**
 * Quarantine each damaged object, then put a good copy in its place: first
 * from the workspace (any recorded output, or file inside one, whose current
 * content has that hash), then from the remote. Returns how the remote is named.
 */
async function repair(ws: Workspace, cache: LocalCache, damaged: DamagedReport[], remoteName: string | undefined): Promise<string> {
  const byHash = new Map(damaged.map((d) => [d.hash, d]));
  for (const d of damaged) if (!d.earlier) d.movedTo = cache.store.quarantine(d.hash, d.problem).movedTo;

  for (const name of ws.graph.order) {
    for (const o of ws.lock.get(name)?.outs ?? []) {
      const abs = path.join(ws.root, o.path);
      const now = await ws.hasher.hashPath(abs);
      if (now.kind === 'missing') continue;
      const candidates = now.kind === 'file' ? [{ hash: now.hash, file: abs, label: o.path }] : now.manifest.map((e) => ({ hash: e.hash, file: path.join(abs, e.relpath), label: `${o.path}/${e.relpath}` }));
      for (const c of candidates) {
        const d = byHash.get(c.hash);
        if (!d || d.repairedFrom) continue;
        try {
          // Copied, never linked: the workspace file stays the user's to edit. addFile re-hashes what it stored.
          await cache.store.addFile(c.file, c.hash, 'copy', c.label);
          d.repairedFrom = 'workspace';
        } catch (e) {
          if (!(e instanceof UserError)) throw e; // changed while being copied: try the remote
        }
      }
      if (now.kind === 'dir') {
        const d = byHash.get(now.hash);
        if (d && !d.repairedFrom && (await cache.store.addManifest(now.manifest)) === d.hash) d.repairedFrom = 'workspace';
      }
    }
  }

  const left = damaged.filter((d) => !d.repairedFrom);
  if (left.length === 0) return 'the workspace';
  const cfg = readRemotesConfig(ws.stateDir);
  if (!remoteName && cfg.remotes.size === 0) {
    for (const d of left) d.notRepaired = 'no workspace file has this content and no remote is configured';
    return 'no remote';
  }
  const remote = await openRemote(ws.root, chooseRemote(cfg, remoteName));
  const label = `remote '${remote.name}'`;
  try {
    const report = newReport();
    try {
      await fetchObjects(cache, remote, left.map((d) => d.hash), { jobs: 8 }, report, (h) => h);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      for (const d of left) d.notRepaired = e.message; // unreachable: say so, keep going
      return label;
    }
    for (const d of left) {
      if (cache.store.has(d.hash)) d.repairedFrom = 'remote';
      else d.notRepaired = report.failures.find((f) => f.what === d.hash)?.why ?? `no workspace file has this content and ${label} does not have it`;
    }
  } finally {
    await remote.close();
  }
  return label;
}
