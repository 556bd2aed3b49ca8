import fs from 'node:fs';
import path from 'node:path';
import type { Workspace } from '../workspace.js';
import { UserError } from '../errors.js';
import type { LocalCache } from './open.js';
import { isDirHash } from './layout.js';
import { fetchObjects, newReport } from './sync.js';
import { chooseRemote, readRemotesConfig } from '../remote/config.js';
import { openRemote } from '../remote/open.js';
import type { LockedPath } from '../lockfile.js';
import type { ManifestEntry } from '../hash/tree.js';

/**
 * Checking the local cache end to end (`lockstep cache verify`): hash every
 * object (file objects against their names, manifests parsed and hashed),
 * name the outputs that use each damaged one, and repair: move it to
 * quarantine/ and put a good copy in its place, from a workspace file that has
 * that content (no network), else from the remote.
 */

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

/** Every object in the local cache hashed; the damaged ones, and needed ones quarantined earlier that nothing has replaced. */
export async function verifyCache(ws: Workspace, cache: LocalCache): Promise<{ objects: string[]; damaged: DamagedReport[] }> {
  const objects = cache.store.list().sort();
  const damaged: DamagedReport[] = [];
  for (const hash of objects) {
    const problem = await cache.store.problemWith(hash);
    if (problem) damaged.push({ hash, problem, usedBy: [] });
  }
  const names = await usersOf(ws, cache);
  for (const d of damaged) d.usedBy.push(...(names.get(d.hash) ?? []));
  // Objects moved aside earlier (by checkout, repro or push) that the lock still needs and nothing has replaced.
  for (const [hash, movedTo] of quarantinedEarlier(cache)) {
    if (cache.store.has(hash) || !names.has(hash)) continue;
    damaged.push({
      hash,
      problem: 'was found damaged earlier and quarantined; the cache has no good copy yet',
      usedBy: names.get(hash)!,
      movedTo,
      earlier: true,
    });
  }
  return { objects, damaged };
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
export async function repairCache(ws: Workspace, cache: LocalCache, damaged: DamagedReport[], remoteName: string | undefined): Promise<string> {
  const byHash = new Map(damaged.map((d) => [d.hash, d]));
  for (const d of damaged) if (!d.earlier) d.movedTo = cache.store.quarantine(d.hash, d.problem).movedTo;

  for (const name of ws.graph.order) {
    for (const o of ws.lock.get(name)?.outs ?? []) {
      const abs = path.join(ws.root, o.path);
      const now = await ws.hasher.hashPath(abs);
      if (now.kind === 'missing') continue;
      const candidates =
        now.kind === 'file'
          ? [{ hash: now.hash, file: abs, label: o.path }]
          : now.manifest.map((e) => ({
              hash: e.hash,
              file: path.join(abs, e.relpath),
              label: `${o.path}/${e.relpath}`,
            }));
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
      await fetchObjects(
        cache,
        remote,
        left.map((d) => d.hash),
        { jobs: 8, report, label: (h) => h },
      );
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
