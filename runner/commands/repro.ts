import path from 'node:path';
import { findRoot, openWorkspace, STATE_DIR } from '../workspace.js';
import { Executor, type CacheHooks, type ReproOptions } from '../executor.js';
import { RepoLock } from '../repo-lock.js';
import { sweepWorkspace } from '../litter.js';
import { cacheSettings } from '../cache/settings.js';
import type { Fetcher } from '../cache/stage-cache.js';
import type { RemoteStore } from '../remote/types.js';
import { HumanReporter, JsonReporter } from '../reporter.js';
import { withEventLog } from '../events.js';
import type { Io } from '../cli-io.js';

export interface ReproArgs extends ReproOptions {
  readonly json: boolean;
  readonly waitMs: number;
  /** Consult and record the run-cache (--no-run-cache turns it off). */
  readonly runCache: boolean;
  /** Fetch outputs and run-cache entries from a remote as stages need them. */
  readonly pull: boolean;
  readonly remote?: string;
}

export async function reproCommand(io: Io, args: ReproArgs): Promise<number> {
  const t0 = performance.now();
  // Take the repository lock before reading pipeline.lock, so a run that waited sees what the other one wrote.
  const lock = await RepoLock.acquire(path.join(findRoot(io.cwd), STATE_DIR), 'repro', args.waitMs);
  let ws;
  try {
    ws = openWorkspace(io.cwd, { checkDeps: true });
  } catch (e) {
    lock.release();
    throw e;
  }
  let signal: NodeJS.Signals | undefined;
  const shown = args.json ? new JsonReporter(io.stdout, io.stderr) : new HumanReporter(io.stdout, args.jobs > 1);
  // Live progress for `lockstep ui` (.lockstep/events.jsonl); a dry run does nothing worth following.
  const reporter = args.dry ? shown : withEventLog(shown, ws.stateDir);
  let cache: CacheHooks | undefined;
  let remote: Pick<RemoteStore, 'close'> | undefined;
  try {
    if (!args.dry) {
      // Settings are checked now (a bad config stops the run before anything runs); the cache machinery
      // itself loads only when a stage first needs it, so a no-op run never pays for it.
      const settings = cacheSettings(ws.stateDir);
      // Temp files of a run that was killed (kill -9, power loss): we hold the lock, so they are nobody's.
      sweepWorkspace(ws, settings.dir);
      const workspace = ws;
      let fetcher: Fetcher | undefined;
      let open: Promise<CacheHooks> | undefined;
      if (args.pull) {
        const [{ pullFetcher, pullTrackedDeps, remoteFor }, { openLocalCache }] = await Promise.all([import('./transfer.js'), import('../cache/open.js')]);
        const cache = openLocalCache(ws.stateDir, settings);
        // Deps tracked by .dvc pointers come first: no stage makes them, so nothing else would bring them.
        const primary = await remoteFor(ws, args.remote);
        try {
          await pullTrackedDeps(io, ws, cache, primary.store, primary.cfg.jobs, args.targets);
        } finally {
          await primary.store.close();
        }
        // The default (or -r) remote, and the remotes outputs name themselves.
        const pulled = await pullFetcher(ws, cache, args.remote, (m) => io.err(`warning: ${m}`));
        remote = { close: pulled.close };
        fetcher = pulled.fetcher;
      }
      const hooks = () =>
        (open ??= import('../cache/open.js').then((m) =>
          m.stageCacheFor(workspace, m.openLocalCache(workspace.stateDir, settings), { warn: (stage, message) => io.err(`warning: ${stage}: ${message}`), useRunCache: args.runCache, fetcher }),
        ));
      cache = {
        restore: async (stage, fp, entry) => (await hooks()).restore(stage, fp, entry),
        beforeRun: async (stage) => {
          // Only hard links need work here, and only for stages that keep their outputs.
          if (settings.link === 'hardlink' && stage.outs.some((o) => o.persist)) await (await hooks()).beforeRun(stage);
        },
        saved: async (stage, fp, outs, log) => (await hooks()).saved(stage, fp, outs, log),
        external: async (stage, inputs) => (await hooks()).external!(stage, inputs),
      };
    }
  } catch (e) {
    lock.release();
    await remote?.close();
    throw e;
  }
  const exec = new Executor(ws, args, reporter, cache);
  const onSignal = (s: NodeJS.Signals) => {
    if (signal) return;
    signal = s;
    io.err(`\n${s} received: stopping running stages…`);
    exec.interrupt();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const results = await exec.run();
    reporter.summary(results, performance.now() - t0);
    if (signal) return signal === 'SIGINT' ? 130 : 143;
    return results.some((r) => r.state === 'failed' || r.state === 'blocked' || r.state === 'not-run') ? 1 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // …and those the run's hashing met inside directory outputs.
    if (!args.dry) sweepWorkspace(ws);
    lock.release();
    await remote?.close();
  }
}
