import path from 'node:path';
import { openWorkspace, saveCaches, findRoot, STATE_DIR } from '../workspace.js';
import { RepoLock } from '../repo-lock.js';
import { openLocalCache } from '../cache/open.js';
import { EXIT_DAMAGED_CACHE } from '../cache/object-store.js';
import { repairCache, verifyCache } from '../cache/verify.js';
import type { Io } from '../cli-io.js';

/** `lockstep cache verify [--repair]`: the check and the repair are cache/verify.ts; this reports them. */
export interface CacheVerifyArgs {
  readonly repair: boolean;
  readonly json: boolean;
  /** The remote to repair from (default: the configured default). */
  readonly remote?: string;
}

export async function cacheVerifyCommand(io: Io, args: CacheVerifyArgs): Promise<number> {
  // Only a repair writes to the cache; checking is read-only and may run beside anything.
  const lock = args.repair ? await RepoLock.acquire(path.join(findRoot(io.cwd), STATE_DIR), 'cache verify --repair', 0) : undefined;
  try {
    const ws = openWorkspace(io.cwd, { checkDeps: false });
    const cache = openLocalCache(ws.stateDir);
    const { objects: hashes, damaged } = await verifyCache(ws, cache);
    let remoteNote: string | undefined;
    if (args.repair && damaged.length) remoteNote = await repairCache(ws, cache, damaged, args.remote);
    saveCaches(ws);
    const remaining = damaged.filter((d) => !d.repairedFrom);
    if (args.json) {
      io.out(JSON.stringify({ ok: remaining.length === 0, objects: hashes.length, damaged }, null, 2));
    } else {
      for (const d of damaged) {
        const used = d.usedBy.length
          ? ` (${d.usedBy.slice(0, 3).join(', ')}${d.usedBy.length > 3 ? `, … ${d.usedBy.length - 3} more` : ''})`
          : ' (no output in pipeline.lock uses it)';
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
          (earlier
            ? `; ${earlier} needed object${earlier === 1 ? ' was' : 's were'} quarantined earlier and ${earlier === 1 ? 'has' : 'have'} no good copy`
            : '') +
          (args.repair && damaged.length ? `; ${fixed} repaired` : '') +
          (remaining.length && !args.repair ? `; 'lockstep cache verify --repair' moves damaged objects aside and fetches good copies` : ''),
      );
    }
    return remaining.length ? EXIT_DAMAGED_CACHE : 0;
  } finally {
    lock?.release();
  }
}
