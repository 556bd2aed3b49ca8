import path from 'node:path';
import { openWorkspace, STATE_DIR, findRoot } from '../workspace.js';
import { RepoLock, GC_LOCK } from '../repo-lock.js';
import { liveRun, requeueAndReport } from '../exp/reap.js';
import { openLocalCache } from '../cache/open.js';
import { ExpStore } from '../exp/store.js';
import { planGc, removePlanned, runningWork, type GcScope } from '../cache/gc.js';
import type { Io } from '../cli-io.js';

function mb(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MB` : `${(bytes / 1024).toFixed(1)} KB`;
}

export async function gcCommand(io: Io, args: GcScope & { force: boolean; json: boolean }): Promise<number> {
  const stateDir = path.join(findRoot(io.cwd), STATE_DIR);
  const repoLock = await RepoLock.acquire(stateDir, 'gc', 0);
  let gcLock: RepoLock | undefined;
  try {
    // An experiment runner holds this only while it records a finished run (a moment).
    gcLock = await RepoLock.acquire(stateDir, 'gc', 60_000, GC_LOCK);
    const ws = openWorkspace(io.cwd, { checkDeps: false });
    const cache = openLocalCache(ws.stateDir);
    const store = new ExpStore(ws.stateDir);
    requeueAndReport(io, store);
    const running = runningWork(store);
    const plan = await planGc(ws, cache, args, running);
    const bytes = plan.objects.reduce((s, o) => s + o.size, 0);
    if (args.force) removePlanned(cache, plan);
    const n = running ? store.list().filter((r) => liveRun(store, r)).length : 0;
    if (running && !args.json) {
      io.err(
        `${n} experiment${n === 1 ? ' is' : 's are'} running: kept what ${n === 1 ? 'it' : 'they'} may need; run gc again once ${n === 1 ? 'it has' : 'they have'} finished to remove the rest`,
      );
    }
    if (args.json) {
      io.out(
        JSON.stringify(
          { removed: args.force, objects: plan.objects.length, bytes, runEntries: plan.runEntries.length, kept: plan.kept, runningExperiments: n },
          null,
          2,
        ),
      );
      return 0;
    }
    const what = `${plan.objects.length} object${plan.objects.length === 1 ? '' : 's'} (${mb(bytes)}) and ${plan.runEntries.length} run-cache entr${plan.runEntries.length === 1 ? 'y' : 'ies'}`;
    if (args.force) io.out(`removed ${what}; kept ${plan.kept} objects still in use`);
    else {
      for (const o of plan.objects.slice(0, 20)) io.out(`  ${o.hash}  ${mb(o.size)}`);
      if (plan.objects.length > 20) io.out(`  … and ${plan.objects.length - 20} more`);
      io.out(`would remove ${what}; ${plan.kept} objects are still in use. Run 'lockstep gc --force' to remove them.`);
    }
    return 0;
  } finally {
    gcLock?.release();
    repoLock.release();
  }
}
