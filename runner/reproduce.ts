import path from 'node:path';
import { findRoot, openWorkspace, STATE_DIR } from './workspace.js';
import { Executor, type CacheHooks, type ReproOptions } from './executor.js';
import { RepoLock } from './repo-lock.js';
import { sweepWorkspace } from './litter.js';
import { cacheSettings } from './cache/settings.js';
import type { Fetcher } from './cache/stage-cache.js';
import type { RemoteStore } from './remote/types.js';
import type { Reporter } from './reporter.js';
import { withEventLog } from './events.js';
import type { Io } from './cli-io.js';
import type { Stage } from './stage.js';
import { toLocked, type Observed } from './observe.js';
import { EXIT, UserError } from './errors.js';
import { runOk } from './decide.js';
import type { LocalCache } from './cache/open.js';

export interface ReproArgs extends ReproOptions {
  readonly waitMs: number;
  /** Consult and record the run-cache (--no-run-cache turns it off). */
  readonly runCache: boolean;
  /** Fetch outputs and run-cache entries from a remote as stages need them. */
  readonly pull: boolean;
  /** Upload each stage's outputs and run-cache entry as soon as it finishes (a run killed half-way loses no finished stage). */
  readonly push?: boolean;
  readonly remote?: string;
}

/**
 * `lockstep repro`: under the repository lock, with the cache (and a remote
 * with --pull/--push) plugged into the executor, Ctrl-C turned into an orderly
 * stop, and temp files of killed runs swept. `shown` is how results are shown
 * (the command picks human or JSON). The exit code: 0 when the run is ok
 * (`runOk`), 1 when not, 130/143 when interrupted.
 */
export async function reproduce(io: Io, args: ReproArgs, shown: Reporter): Promise<number> {
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
      let pushStage: ((stage: Stage, fp: string | undefined, outs: readonly Observed[]) => Promise<void>) | undefined;
      const closers: (() => Promise<void>)[] = [];
      remote = { close: async () => void (await Promise.all(closers.map((c) => c()))) };
      if (args.pull || args.push) {
        const [{ pullFetcher, pullTrackedDeps }, { remoteFor }, { openLocalCache }] = await Promise.all([
          import('./cache/transfer.js'),
          import('./remote/open.js'),
          import('./cache/open.js'),
        ]);
        const local = openLocalCache(ws.stateDir, settings);
        const primary = await remoteFor(ws, args.remote);
        closers.push(() => primary.store.close());
        if (args.pull) {
          // Deps tracked by .dvc pointers come first: no stage makes them, so nothing else would bring them.
          await pullTrackedDeps(ws, local, primary.store, {
            jobs: primary.cfg.jobs,
            targets: args.targets,
            pulled: (p) => io.out(`↺ ${p}: pulled`),
            warn: (m) => io.err(`warning: ${m}`),
          });
          // The default (or -r) remote, and the remotes outputs name themselves.
          const pulled = await pullFetcher(ws, local, args.remote, (m) => io.err(`warning: ${m}`));
          closers.push(pulled.close);
          fetcher = pulled.fetcher;
        }
        if (args.push) {
          if (primary.cfg.readOnly)
            throw new UserError({ message: `remote '${primary.cfg.name}' is read-only (read_only: true); repro --push cannot upload to it` });
          pushStage = stagePusher(local, primary.store, primary.cfg.jobs, (m) => io.err(`warning: ${m}`));
        }
      }
      const hooks = () =>
        (open ??= import('./cache/open.js').then((m) =>
          m.stageCacheFor(workspace, m.openLocalCache(workspace.stateDir, settings), {
            warn: (stage, message) => io.err(`warning: ${stage}: ${message}`),
            useRunCache: args.runCache,
            fetcher,
          }),
        ));
      cache = {
        restore: async (stage, fp, entry) => (await hooks()).restore(stage, fp, entry),
        beforeRun: async (stage) => {
          // Only hard links need work here, and only for stages that keep their outputs.
          if (settings.link === 'hardlink' && stage.outs.some((o) => o.persist)) await (await hooks()).beforeRun(stage);
        },
        saved: async (stage, fp, outs, log) => {
          await (await hooks()).saved(stage, fp, outs, log);
          await pushStage?.(stage, fp, outs);
        },
        external: async (stage, inputs) => (await hooks()).external!(stage, inputs),
      };
    }
  } catch (e) {
    lock.release();
    await remote?.close();
    throw e;
  }
  const exec = new Executor(ws, args, { reporter, cache });
  const onSignal = (s: NodeJS.Signals) => {
    if (signal) return;
    signal = s;
    io.err(`\n${s} received: stopping running stages…`);
    exec.interrupt();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A run started by `lockstep worker` stops when its worker dies (even by kill -9), instead of running on orphaned.
  const parent = process.ppid;
  const watch = process.env.LOCKSTEP_EXIT_WITH_PARENT ? setInterval(() => process.ppid !== parent && onSignal('SIGTERM'), 250) : undefined;
  watch?.unref();
  try {
    const results = await exec.run();
    reporter.summary(results, performance.now() - t0);
    if (signal) return signal === 'SIGINT' ? 130 : 143;
    return runOk(results) ? EXIT.ok : EXIT.failure;
  } finally {
    clearInterval(watch);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // …and those the run's hashing met inside directory outputs.
    if (!args.dry) sweepWorkspace(ws);
    lock.release();
    await remote?.close();
  }
}

/**
 * Uploads one stage's results right after it is saved: file objects, then
 * manifests, then its run-cache entry (the order `push` keeps), so another
 * machine resuming this run restores the stage instead of running it again.
 * A failed upload is a warning (the stage did succeed here); an unreachable
 * remote is said once and not tried again.
 */
function stagePusher(local: LocalCache, remote: RemoteStore, jobs: number, warn: (m: string) => void) {
  let gone = false;
  return async (stage: Stage, fp: string | undefined, outs: readonly Observed[]): Promise<void> => {
    if (gone) return;
    const { push } = await import('./cache/sync.js');
    const locked = outs.map((o) => toLocked(o)!);
    const entries = fp && local.runs.has(fp) && !local.runs.trust.readOnly ? [fp] : [];
    try {
      const r = await push(
        local,
        remote,
        locked.map((o) => ({ path: o.path, out: o })),
        entries,
        { jobs },
      );
      for (const f of r.failures) warn(`${stage.name}: not pushed: ${f.what}: ${f.why}`);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      gone = true;
      warn(`${e.message}; stage results stay in the local cache`);
    }
  };
}
