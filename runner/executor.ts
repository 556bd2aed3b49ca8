import fs from 'node:fs';
import path from 'node:path';
import { saveCaches, type Workspace } from './workspace.js';
import type { Stage } from './stage.js';
import type { LockEntry, LockedPath } from './lockfile.js';
import { fingerprint, observeInputs, observeOuts, toLocked, type Inputs, type Observed } from './observe.js';
import { staleReasons, type Reason } from './staleness.js';
import type { Reporter, StageResult } from './reporter.js';
import { writeFileAtomic } from './fs-util.js';
import { UserError, formatDiagnostic, formatLocation } from './errors.js';
import { blockedBy, decide, type Upstream } from './decide.js';
import type { StageFailure } from './failure.js';
import { recordDurations } from './durations.js';
import type { RunOptions, RunResult } from './process.js';
import { abortHashing, HashAborted } from './hash/xxhash.js';
import { guardFor } from './containment.js';
import { pointerFor } from './tracked.js';

export interface ReproOptions {
  readonly targets: readonly string[];
  readonly force: boolean;
  readonly single: boolean;
  readonly downstream: boolean;
  readonly dry: boolean;
  readonly keepGoing: boolean;
  readonly jobs: number;
  /** A stage whose only change is missing outputs counts as up to date (its outputs are elsewhere, e.g. a remote). */
  readonly allowMissing?: boolean;
}

/** Outputs put back from the cache instead of running a stage. */
export interface Restored {
  readonly outs: LockedPath[];
  /** The stage's saved output, replayed so the user sees what the run printed. */
  readonly log: string;
  /** 'cache': pipeline.lock already recorded these inputs; 'run-cache': an earlier run with these inputs did. */
  readonly from: 'cache' | 'run-cache';
}

/**
 * Where the content-addressed cache plugs in. `restore` is asked before a
 * stale stage runs; `beforeRun` just before it runs; `saved` after it succeeded.
 */
export interface CacheHooks {
  restore(stage: Stage, fp: string, lockEntry: LockEntry | undefined): Promise<Restored | undefined>;
  beforeRun(stage: Stage): Promise<void>;
  saved(stage: Stage, fp: string | undefined, outs: readonly Observed[], log: string): Promise<void>;
  /** Fetch a running stage's external deps into the cache; the environment that tells the stage where they are. */
  external?(stage: Stage, inputs: Inputs): Promise<Record<string, string>>;
}

/**
 * What runs a stage: the seam between scheduling (this file) and processes.
 * `repro` uses the process runner (shell commands, module hosts booted ahead,
 * containers); tests hand in an in-process fake to check scheduling, cutoff,
 * `-k`, `-j` and interruption deterministically, with no sleeps.
 */
export interface StageRunner {
  run(stage: Stage, opts: RunOptions): Promise<RunResult>;
  /** Boot up to `wanted` module hosts ahead of the module stages still to come. */
  prewarm(root: string, wanted: number): void;
  /** End the hosts booted ahead that no stage took. */
  discardWarm(): void;
  /** End every running stage (an interrupt). */
  killAll(signal: NodeJS.Signals): void;
}

/** The real runner, loaded on first use: a no-op run never pays for the process machinery. */
const processRunner: StageRunner = {
  run: async (stage, opts) => (await import('./process.js')).runStage(stage, opts),
  prewarm: (root, wanted) => void import('./process.js').then((p) => p.prewarmModuleHosts(root, wanted)),
  discardWarm: () => void import('./process.js').then((p) => p.discardWarmHosts()),
  killAll: (signal) => void import('./process.js').then((p) => p.killAll(signal)),
};

/** How often, at most, pipeline.lock is rewritten during a run (always at the end too). */
const LOCK_FLUSH_MS = 1000;

export function selectStages(ws: Workspace, opts: Pick<ReproOptions, 'targets' | 'single' | 'downstream'>): Set<string> {
  const g = ws.graph;
  const targets = opts.targets.length ? g.resolveTargets(opts.targets, ws.root) : [...g.order];
  if (opts.single) return new Set(targets);
  if (opts.downstream) return g.closure(targets, 'down');
  return g.closure(targets, 'up');
}

/** What the executor works with besides the workspace and the options: where results go, the cache, the runner. */
export interface ExecutorParts {
  readonly reporter: Reporter;
  /** The content-addressed cache; without it every stale stage runs (nothing restored, nothing saved). */
  readonly cache?: CacheHooks;
  /** The process runner unless given (tests give an in-process fake). */
  readonly runner?: StageRunner;
}

export class Executor {
  private readonly results = new Map<string, StageResult>();
  private readonly selected: Set<string>;
  private lockDirty = false;
  private flushTimer: NodeJS.Timeout | undefined;
  /** How long the last lock write took (the next waits at least ten times that). */
  private lastFlushMs = 0;
  private stopping: 'failure' | 'interrupt' | undefined;
  private readonly running = new Set<string>();
  /** Called when a module stage takes the pre-started host, to start the next one if more may run. */
  private onModuleStarted: () => void = () => undefined;
  /** Outputs each stage left missing under --allow-missing, with the hash the lock records for them. */
  private readonly leftMissing = new Map<string, ReadonlyMap<string, string>>();

  private readonly reporter: Reporter;
  private readonly cache: CacheHooks | undefined;
  private readonly runner: StageRunner;

  constructor(
    private readonly ws: Workspace,
    private readonly opts: ReproOptions,
    parts: ExecutorParts,
  ) {
    this.reporter = parts.reporter;
    this.cache = parts.cache;
    this.runner = parts.runner ?? processRunner;
    this.selected = selectStages(ws, opts);
  }

  /** Called on SIGINT/SIGTERM: stop scheduling, end children; run() then settles and flushes. */
  interrupt(): void {
    this.stopping = 'interrupt';
    abortHashing(); // a stage hashing a big dep stops at its next chunk
    this.runner.killAll('SIGTERM');
  }

  async run(): Promise<StageResult[]> {
    const order = this.ws.graph.order.filter((n) => this.selected.has(n));
    const pending = new Set(order);
    const inFlight = new Set<Promise<void>>();

    // Indegree counts, not a scan of every stage after every completion (quadratic at thousands of stages):
    // a stage is ready once all its selected upstream stages have a result. Ready stages start in pipeline order.
    const position = new Map(order.map((n, i) => [n, i]));
    const unfinishedUps = new Map<string, number>();
    const downstreamOf = new Map<string, string[]>();
    for (const n of order) {
      const ups = [...this.ws.graph.upstream(n)].filter((u) => this.selected.has(u));
      unfinishedUps.set(n, ups.length);
      for (const u of ups) {
        const ds = downstreamOf.get(u);
        if (ds) ds.push(n);
        else downstreamOf.set(u, [n]);
      }
    }
    const ready = order.filter((n) => unfinishedUps.get(n) === 0);
    const finished = (n: string) => {
      if (!this.results.has(n)) return; // it threw: the run is ending
      for (const d of downstreamOf.get(n) ?? []) {
        const left = unfinishedUps.get(d)! - 1;
        unfinishedUps.set(d, left);
        if (left > 0) continue;
        let lo = 0;
        let hi = ready.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (position.get(ready[mid]!)! < position.get(d)!) lo = mid + 1;
          else hi = mid;
        }
        ready.splice(lo, 0, d);
      }
    };
    // Module stages in a container start their own host inside it: pre-started host processes are for the others.
    const isModule = (n: string) => this.ws.pipeline.stages.get(n)!.command.kind === 'module' && !this.ws.pipeline.stages.get(n)!.container;
    let modulesPending = order.filter(isModule).length;
    // No engine for container stages is bad input: said before anything runs, not halfway through.
    if (!this.opts.dry && order.some((n) => this.ws.pipeline.stages.get(n)!.container)) {
      const { resolveEngine } = await import('./container/engine.js');
      resolveEngine(this.ws.stateDir);
    }
    // Start module hosts while other work goes on, so a module stage that runs does not wait for node to boot.
    const warmUp = () => {
      if (!this.opts.dry && modulesPending > 0) this.runner.prewarm(this.ws.root, modulesPending);
    };
    // Hosts start once a stage runs (a no-op run boots none), then stay ahead of the module stages still to come;
    // when a module stage is certain to run (forced, or never run), one boots at once, while inputs are hashed.
    this.onModuleStarted = warmUp;
    const certain = order.some((n) => isModule(n) && !this.ws.pipeline.stages.get(n)!.frozen && (this.opts.force || !this.ws.lock.has(n)));
    if (certain && !this.opts.dry) this.runner.prewarm(this.ws.root, 1);
    try {
      for (;;) {
        if (this.stopping === 'interrupt') break;
        while (ready.length > 0 && inFlight.size < this.opts.jobs && !this.stopping) {
          const n = ready.shift()!;
          pending.delete(n);
          if (isModule(n)) modulesPending--;
          const p: Promise<void> = this.process(this.ws.pipeline.stages.get(n)!).finally(() => {
            inFlight.delete(p);
            finished(n);
          });
          inFlight.add(p);
        }
        if (inFlight.size === 0) break;
        await Promise.race(inFlight);
      }
      await Promise.allSettled(inFlight);
    } finally {
      for (const n of order) {
        if (!pending.has(n) || this.results.has(n)) continue;
        const failedUp = [...this.ws.graph.upstream(n)].find((u) => ['failed', 'blocked'].includes(this.results.get(u)?.state ?? ''));
        if (failedUp) this.record({ name: n, state: 'blocked', reasons: [], failure: { kind: 'upstream-failed', stage: failedUp } }, false);
        else if (this.stopping === 'interrupt') this.record({ name: n, state: 'interrupted', reasons: [], failure: { kind: 'interrupted' } }, false);
        else this.record({ name: n, state: 'not-run', reasons: [] }, false);
      }
      this.flushLock();
      if (order.some(isModule) && !this.opts.dry) this.runner.discardWarm();
      saveCaches(this.ws);
      if (!this.opts.dry) recordDurations(this.ws.stateDir, [...this.results.values()]);
    }
    return order.map((n) => this.results.get(n)!);
  }

  private record(r: StageResult, report = true): void {
    this.results.set(r.name, r);
    if (report) this.reporter.finished(r);
  }

  private async process(stage: Stage): Promise<void> {
    try {
      await this.processStage(stage);
    } catch (e) {
      // Stopped mid-hash by a signal: the stage did not run, and runs next time.
      if (e instanceof HashAborted || this.stopping === 'interrupt') {
        this.record({ name: stage.name, state: 'interrupted', reasons: [], failure: { kind: 'interrupted' } });
        return;
      }
      throw e;
    }
  }

  /** What became of a stage's selected upstream stages, as the decision needs it. */
  private upstreamOf(name: string): Upstream[] {
    return [...this.ws.graph.upstream(name)]
      .filter((u) => this.selected.has(u))
      .map((u): Upstream => {
        const r = this.results.get(u)!;
        if (r.state === 'would-run') return { name: u, kind: 'pending', outs: this.ws.pipeline.stages.get(u)!.outs.map((o) => o.path) };
        if (r.state === 'failed' || r.state === 'blocked' || r.state === 'interrupted' || r.state === 'not-run') return { name: u, kind: 'incomplete' };
        return { name: u, kind: 'current', leftMissing: this.leftMissing.get(u) };
      });
  }

  /**
   * One stage, in steps: decide (from its inputs, its lock entry and its upstream stages) whether it is up to date,
   * then check it can run, then restore its outputs from the cache if an earlier run had these inputs, else run it.
   */
  private async processStage(stage: Stage): Promise<void> {
    const upstream = this.upstreamOf(stage.name);
    // 1. An upstream stage did not complete: this stage's inputs are not there, so nothing is hashed.
    const by = blockedBy(upstream);
    if (by !== undefined) {
      this.record({ name: stage.name, state: 'blocked', reasons: [], failure: { kind: 'upstream-failed', stage: by } });
      return;
    }
    // 2. Observe: hash inputs only now, as every upstream stage has finished writing them.
    const { root, hasher, pipeline } = this.ws;
    const inputs = await observeInputs(stage, root, hasher, pipeline.params);
    const outsBefore = await observeOuts(stage, root, hasher);
    const { entry: lockEntry, adopted } = this.ws.lock.resolve(stage, root, inputs, outsBefore);
    const reasons = staleReasons({ lock: lockEntry, inputs, outs: outsBefore, alwaysChanged: stage.alwaysChanged });

    // 3. Decide, in the one place status decides too.
    const decision = decide({
      stage,
      reasons,
      lock: lockEntry,
      upstream,
      opts: { force: this.opts.force, dry: this.opts.dry, allowMissing: this.opts.allowMissing ?? false },
    });
    switch (decision.kind) {
      case 'blocked': // found in step 1 already; said the same way should it come here
        this.record({ name: stage.name, state: 'blocked', reasons: [], failure: { kind: 'upstream-failed', stage: decision.by } });
        return;
      case 'frozen':
        this.record({ name: stage.name, state: 'frozen', reasons: decision.reasons });
        return;
      case 'would-run':
        this.record({ name: stage.name, state: 'would-run', reasons: decision.reasons });
        return;
      case 'up-to-date':
        if (decision.leftMissing.size) this.leftMissing.set(stage.name, decision.leftMissing);
        // Known from dvc.lock only: recorded in pipeline.lock now, so the next run need not look there.
        if (adopted && lockEntry && !this.opts.dry) await this.adopt(stage, inputs, outsBefore, lockEntry);
        this.record({ name: stage.name, state: 'skipped', reasons: [] });
        return;
      case 'restore-or-run':
      case 'run':
        break;
    }
    const why = [...decision.reasons];

    // 4. Can it run at all? A missing input or image fails it now, before its outputs are deleted.
    const cannot = await this.cannotRun(stage, inputs);
    if (cannot) {
      this.fail(stage, why, cannot, 0);
      return;
    }

    // 5. Restore: an earlier run with these very inputs made outputs the cache still holds. Not for a forced or
    // always_changed stage ('run'), whose inputs do not say everything; nor without a fingerprint (an input
    // that cannot be hashed here).
    const fp = await fingerprint(inputs);
    if (decision.kind === 'restore-or-run' && this.cache && fp) {
      const done = await this.restore(stage, why, fp, inputs, lockEntry);
      if (done) return;
    }

    // 6. Run it.
    await this.execute(stage, why, inputs, fp, lockEntry);
  }

  /** Why a stale stage cannot run (a dep or its container image is missing), or undefined when it can. */
  private async cannotRun(stage: Stage, inputs: Inputs): Promise<StageFailure | undefined> {
    const missing = inputs.deps.find((d) => d.state.kind === 'missing');
    if (missing) {
      const pointer = pointerFor(this.ws.root, missing.path);
      const leftOut = [...this.leftMissing.values()].some((m) => m.has(missing.path));
      const hint = leftOut
        ? '--allow-missing left it out; pull it or repro without --allow-missing'
        : pointer
          ? `it is tracked by ${pointer}: 'lockstep pull ${pointer}' brings it`
          : undefined;
      return { kind: 'missing-dep', path: missing.path, ...(hint ? { hint } : {}) };
    }
    if (inputs.container && !inputs.container.id) {
      const { missingImage } = await import('./container/image.js');
      const { resolveEngine } = await import('./container/engine.js');
      const spec = stage.container!;
      const message =
        spec.image !== undefined
          ? missingImage(resolveEngine(this.ws.stateDir), spec.image)
          : `Containerfile '${spec.build.file}' or its context '${spec.build.context}/' does not exist`;
      return { kind: 'image-unavailable', message };
    }
    return undefined;
  }

  /** Put the stage's outputs back from the cache; false when the cache has none for these inputs (the stage runs). */
  private async restore(stage: Stage, reasons: Reason[], fp: string, inputs: Inputs, lockEntry: LockEntry | undefined): Promise<boolean> {
    const t0 = performance.now();
    let restored: Restored | undefined;
    try {
      restored = await this.cache!.restore(stage, fp, lockEntry);
    } catch (e) {
      // A restore that would write somewhere unsafe (a link appeared since the pipeline was read) fails the stage, as running it would.
      if (!(e instanceof UserError)) throw e;
      this.fail(stage, reasons, { kind: 'unsafe-path', message: e.message }, performance.now() - t0);
      return true;
    }
    if (!restored) return false;
    for (const l of restored.log.split('\n')) if (l) this.reporter.line(stage.name, l, 'stdout');
    this.commit(stage, inputs, restored.outs);
    const unchanged = lockEntry !== undefined && sameOuts(lockEntry.outs, restored.outs);
    this.record({ name: stage.name, state: 'restored', from: restored.from, reasons, durationMs: performance.now() - t0, unchangedOutputs: unchanged });
    return true;
  }

  private async execute(stage: Stage, reasons: Reason[], inputs: Inputs, fp: string | undefined, before: LockEntry | undefined): Promise<void> {
    const { root } = this.ws;
    this.reporter.started(stage.name, reasons);
    this.onModuleStarted();
    this.running.add(stage.name);
    const t0 = performance.now();
    let log = '';
    try {
      // Checked again right before deleting: a symlink may have appeared since the pipeline was read
      // (an upstream stage made it), and rm or the stage would then act outside the repository.
      const unsafe = unsafeTarget(root, stage);
      if (unsafe) {
        this.fail(stage, reasons, { kind: 'unsafe-path', message: unsafe }, performance.now() - t0);
        return;
      }
      for (const o of stage.outs) {
        const abs = path.join(root, o.path);
        if (!o.persist) fs.rmSync(abs, { recursive: true, force: true });
        fs.mkdirSync(path.dirname(abs), { recursive: true });
      }
      await this.cache?.beforeRun(stage);
      const env = stage.deps.some((d) => d.external) && this.cache?.external ? await this.cache.external(stage, inputs) : undefined;
      const result = await this.runner.run(stage, {
        root,
        stateDir: this.ws.stateDir,
        params: this.ws.pipeline.params,
        ...(inputs.container ? { image: inputs.container } : {}),
        onHostTaken: () => this.onModuleStarted(),
        onNote: (line) => this.reporter.line(stage.name, line, 'stderr'),
        ...(env ? { env } : {}),
        onLine: (line, stream) => {
          log += line + '\n';
          this.reporter.line(stage.name, line, stream);
        },
      });
      this.saveLog(stage.name, log);
      if (this.stopping === 'interrupt') {
        this.record({ name: stage.name, state: 'interrupted', reasons, durationMs: performance.now() - t0, failure: { kind: 'interrupted' } });
        return;
      }
      if (!result.ok) {
        this.fail(stage, reasons, result.failure, performance.now() - t0);
        return;
      }
      // A command that exits 0 without making what it declares has not done its job.
      const outs = await observeOuts(stage, root, this.ws.hasher);
      const absent = outs.filter((o) => o.state.kind === 'missing').map((o) => o.path);
      if (absent.length) {
        this.fail(stage, reasons, { kind: 'missing-outputs', paths: absent }, performance.now() - t0);
        return;
      }
      const locked = outs.map((o) => toLocked(o)!);
      if (this.cache) await this.cache.saved(stage, fp, outs, log);
      this.commit(stage, inputs, locked);
      // Early cutoff: identical outputs leave every downstream stage's deps unchanged, so they stay skipped.
      const unchanged = before !== undefined && sameOuts(before.outs, locked);
      this.record({ name: stage.name, state: 'done', reasons, durationMs: performance.now() - t0, unchangedOutputs: unchanged });
    } catch (e) {
      const failure = failureFrom(stage, e);
      // Located problems (a stage module that does not compile) keep their file:line:col, one line each.
      if (failure.kind === 'compile-error')
        for (const d of failure.diagnostics) for (const l of formatDiagnostic(d).split('\n')) this.reporter.line(stage.name, l, 'stderr');
      this.fail(stage, reasons, failure, performance.now() - t0);
    } finally {
      this.running.delete(stage.name);
    }
  }

  /** An up-to-date stage known from dvc.lock: record it in pipeline.lock and its outputs in our cache, as if it had run. */
  private async adopt(stage: Stage, inputs: Inputs, outs: readonly Observed[], entry: LockEntry): Promise<void> {
    if (outs.some((o) => o.state.kind === 'missing')) return; // --allow-missing left it as it is
    if (this.cache) await this.cache.saved(stage, await fingerprint(inputs), outs, '');
    this.commit(stage, inputs, [...entry.outs]);
  }

  private fail(stage: Stage, reasons: Reason[], failure: StageFailure, durationMs: number): void {
    this.record({ name: stage.name, state: 'failed', reasons, durationMs, failure });
    if (!this.opts.keepGoing && !this.stopping) this.stopping = 'failure';
  }

  private saveLog(name: string, log: string): void {
    const file = path.join(this.ws.stateDir, 'logs', `${name.replace(/[^\w.@-]/g, '_')}.log`);
    try {
      // A silent stage leaves no file (an older run's log goes): creating a file per stage is a measurable share
      // of a many-small-stages run, and an empty log says nothing.
      if (log === '') fs.rmSync(file, { force: true });
      else writeFileAtomic(file, log, { durable: false });
    } catch {
      // the log is a convenience; never fail a stage over it
    }
  }

  /** Record a successful stage in the lock: deps as hashed before it ran, outs as produced. */
  private commit(stage: Stage, inputs: Inputs, outs: LockedPath[]): void {
    this.ws.lock.set(stage.name, {
      cmd: inputs.cmd,
      deps: inputs.deps.map((d) => toLocked(d)!),
      params: inputs.params,
      outs,
      ...(inputs.container?.id ? { container: { image: inputs.container.image, id: inputs.container.id } } : {}),
    });
    this.lockDirty = true;
    // Rewriting the whole lock after every stage is what makes DVC quadratic; batch it. A big lock takes
    // long to write, so the interval grows with it: writes take at most a tenth of the run.
    this.flushTimer ??= setTimeout(
      () => {
        this.flushTimer = undefined;
        this.flushLock();
      },
      Math.max(LOCK_FLUSH_MS, 10 * this.lastFlushMs),
    );
  }

  private flushLock(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.lockDirty) return;
    const t0 = performance.now();
    this.ws.lock.write(this.ws.graph.order);
    this.lastFlushMs = performance.now() - t0;
    this.lockDirty = false;
  }
}

function sameOuts(a: readonly LockedPath[], b: readonly LockedPath[]): boolean {
  return a.length === b.length && a.every((x, i) => x.path === b[i]!.path && x.hash === b[i]!.hash);
}

/** Why running the stage now would act outside the repository (its wdir or an output is behind a symlink), if it would. */
function unsafeTarget(root: string, stage: Stage): string | undefined {
  const guard = guardFor(root);
  const why = stage.wdir !== '.' ? guard.problem(stage.wdir) : undefined;
  if (why) return `refusing to run in wdir '${stage.wdir}': ${why}`;
  try {
    for (const o of stage.outs) guard.assertWritable(o.path, 'output');
  } catch (e) {
    if (e instanceof UserError) return e.message;
    throw e;
  }
  return undefined;
}

/** A problem thrown while preparing or running a stage, as the stage's failure. */
function failureFrom(stage: Stage, e: unknown): StageFailure {
  if (e instanceof UserError && e.diagnostics.some((d) => d.location?.line !== undefined)) {
    if (stage.command.kind === 'module') return { kind: 'compile-error', diagnostics: e.diagnostics };
    const first = e.diagnostics[0]!;
    const more = e.diagnostics.length > 1 ? ` (and ${e.diagnostics.length - 1} more)` : '';
    return { kind: 'error', message: `${first.location ? formatLocation(first.location) + ': ' : ''}${first.message}${more}` };
  }
  return { kind: 'error', message: (e as Error).message };
}
