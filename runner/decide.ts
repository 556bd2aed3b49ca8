import type { LockEntry } from './lockfile.js';
import type { Reason } from './staleness.js';

/**
 * What to do with one stage, decided in one place from facts already
 * gathered: the reasons `staleReasons` found, the options of the run and what
 * became of the stage's upstream stages. Pure (no I/O), so `status`,
 * `repro --dry` and `repro` cannot disagree: `status` is a dry run's decisions.
 */
export type Decision =
  /** Nothing changed (or, under --allow-missing, only outputs kept elsewhere are absent). */
  | { readonly kind: 'up-to-date'; readonly leftMissing: ReadonlyMap<string, string> }
  /** Frozen: never run by repro, whatever changed (the reasons say what did). */
  | { readonly kind: 'frozen'; readonly reasons: readonly Reason[] }
  /** A dry run (and `status`): the stage would run, for these reasons. */
  | { readonly kind: 'would-run'; readonly reasons: readonly Reason[] }
  /** Stale: put its outputs back from the cache if an earlier run had these inputs, or else run it. */
  | { readonly kind: 'restore-or-run'; readonly reasons: readonly Reason[] }
  /** Run it even if the cache has its outputs: --force, or always_changed (its inputs do not say everything). */
  | { readonly kind: 'run'; readonly reasons: readonly Reason[] }
  /** An upstream stage did not complete, so this one's inputs are not there to use. */
  | { readonly kind: 'blocked'; readonly by: string };

/** What became of an upstream stage, as far as a stage downstream of it cares. */
export type Upstream =
  /** Its outputs are as recorded (some perhaps left missing under --allow-missing: path → locked hash). */
  | { readonly name: string; readonly kind: 'current'; readonly leftMissing?: ReadonlyMap<string, string> }
  /** It would run (a dry run): its outputs are still to be made, so downstream is stale too. */
  | { readonly name: string; readonly kind: 'pending'; readonly outs: readonly string[] }
  /** It failed, was blocked, interrupted or not run: its outputs cannot be trusted. */
  | { readonly name: string; readonly kind: 'incomplete' };

export interface DecideOptions {
  readonly force: boolean;
  readonly dry: boolean;
  /** A stage whose only change is missing outputs counts as up to date (its outputs are elsewhere, e.g. a remote). */
  readonly allowMissing: boolean;
}

export interface DecideInput {
  readonly stage: { readonly frozen: boolean; readonly alwaysChanged: boolean };
  /** What `staleReasons` found against `lock`. */
  readonly reasons: readonly Reason[];
  readonly lock: LockEntry | undefined;
  /** The stage's selected upstream stages, in a stable order (stages left out of the run are not listed). */
  readonly upstream: readonly Upstream[];
  readonly opts: DecideOptions;
}

/** The first upstream stage that did not complete, if any: checked before inputs are hashed, as they need not be. */
export function blockedBy(upstream: readonly Upstream[]): string | undefined {
  return upstream.find((u) => u.kind === 'incomplete')?.name;
}

export function decide({ stage, reasons: found, lock, upstream, opts }: DecideInput): Decision {
  const by = blockedBy(upstream);
  if (by !== undefined) return { kind: 'blocked', by };

  // A dep an upstream stage is still to make is not missing, only not made yet; that stage's running is the reason.
  const pending = upstream.filter((u) => u.kind === 'pending').sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const toBeMade = new Set(pending.flatMap((u) => u.outs));
  let reasons: readonly Reason[] = [
    ...found.filter((r) => !(r.kind === 'dep-missing' && toBeMade.has(r.path))),
    ...pending.map((u): Reason => ({ kind: 'upstream-stale', stage: u.name })),
  ];
  if (stage.frozen) return { kind: 'frozen', reasons };

  // --allow-missing: outputs absent here (kept on a remote) are not a change, nor are deps an upstream stage left
  // absent that way, as long as the lock records this stage as having read exactly that version of them.
  const leftUpstream = new Map(upstream.flatMap((u) => (u.kind === 'current' && u.leftMissing ? [...u.leftMissing] : [])));
  const allowed = (r: Reason) =>
    r.kind === 'out-missing' ||
    (r.kind === 'dep-missing' && leftUpstream.has(r.path) && lock!.deps.some((d) => d.path === r.path && d.hash === leftUpstream.get(r.path)));
  if (opts.allowMissing && lock && reasons.length > 0 && reasons.every(allowed)) {
    return { kind: 'up-to-date', leftMissing: new Map(lock.outs.map((o) => [o.path, o.hash])) };
  }

  if (opts.force && reasons.length === 0) reasons = [{ kind: 'forced' }];
  if (reasons.length === 0) return { kind: 'up-to-date', leftMissing: new Map() };
  if (opts.dry) return { kind: 'would-run', reasons };
  // The cache is keyed by inputs; forced or always_changed stages are asked to run because inputs do not tell all.
  if (opts.force || stage.alwaysChanged) return { kind: 'run', reasons };
  return { kind: 'restore-or-run', reasons };
}

/** The reasons a decision carries (none for up to date or blocked). */
export function reasonsOf(d: Decision): readonly Reason[] {
  return 'reasons' in d ? d.reasons : [];
}

/** A stage's final state, for whether a whole run went well. */
type RunState = { readonly state: string };

/**
 * Whether a whole run is ok: the one rule behind repro's exit code, its --json
 * `ok`, and so `exp run` and the worker (which run repro). Skipped, frozen,
 * restored and would-run stages are fine; a stage that failed, or did not run
 * because of a failure or an interrupt, is not.
 */
export function runOk(results: readonly RunState[]): boolean {
  return results.every((r) => r.state !== 'failed' && r.state !== 'blocked' && r.state !== 'not-run' && r.state !== 'interrupted');
}
