import { describeReason, type Reason } from './staleness.js';
import { describeFailure, type StageFailure } from './failure.js';
import { runOk } from './decide.js';

type FinalState =
  | 'done' // ran and succeeded
  | 'restored' // outputs restored from the run-cache instead of running
  | 'skipped' // up to date
  | 'frozen' // frozen: never run by repro
  | 'failed'
  | 'blocked' // an upstream stage failed
  | 'not-run' // stopped after a failure elsewhere (no --keep-going)
  | 'interrupted'
  | 'would-run'; // --dry

interface Outcome<S extends FinalState> {
  readonly name: string;
  readonly state: S;
  readonly reasons: readonly Reason[];
}

/** How one stage of a run ended: a union on its state, each carrying what that state has. */
export type StageResult =
  | (Outcome<'done'> & {
      readonly durationMs: number;
      /** Its outputs came out byte-identical to the recorded ones, so downstream may stay skipped (early cutoff). */
      readonly unchangedOutputs: boolean;
    })
  | (Outcome<'restored'> & { readonly durationMs: number; readonly from: 'cache' | 'run-cache'; readonly unchangedOutputs: boolean })
  | Outcome<'skipped'>
  | Outcome<'frozen'>
  | Outcome<'would-run'>
  | Outcome<'not-run'>
  | (Outcome<'failed'> & { readonly durationMs: number; readonly failure: StageFailure })
  | (Outcome<'blocked'> & { readonly failure: StageFailure & { readonly kind: 'upstream-failed' } })
  | (Outcome<'interrupted'> & { readonly durationMs?: number; readonly failure: StageFailure & { readonly kind: 'interrupted' } });

/** The failure a result carries, if it has one. */
export function failureOf(r: StageResult): StageFailure | undefined {
  return 'failure' in r ? r.failure : undefined;
}

/** How long it ran (or restored), for the states that took time. */
export function durationOf(r: StageResult): number | undefined {
  return 'durationMs' in r ? r.durationMs : undefined;
}

export interface Reporter {
  started(name: string, reasons: readonly Reason[]): void;
  line(name: string, line: string, stream: 'stdout' | 'stderr'): void;
  finished(r: StageResult): void;
  summary(results: readonly StageResult[], totalMs: number): void;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${Math.round((ms % 60_000) / 1000)}s`;
}

const MARK: Record<FinalState, string> = {
  done: '✓',
  restored: '↺',
  skipped: '·',
  frozen: '❄',
  failed: '✗',
  blocked: '-',
  'not-run': '-',
  interrupted: '!',
  'would-run': '?',
};

/** Lines a person can follow; with several jobs, stage output is prefixed by its stage name. */
export class HumanReporter implements Reporter {
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly prefixOutput: boolean,
    private readonly verbose = false,
  ) {}

  started(name: string, reasons: readonly Reason[]): void {
    const why = reasons.length ? ` (${reasons.slice(0, 3).map(describeReason).join('; ')}${reasons.length > 3 ? '; …' : ''})` : '';
    this.out.write(`▶ ${name}: running${why}\n`);
  }

  line(name: string, line: string): void {
    this.out.write(this.prefixOutput ? `  ${name} | ${line}\n` : `  ${line}\n`);
  }

  finished(r: StageResult): void {
    if (r.state === 'skipped' && !this.verbose) {
      this.out.write(`${MARK.skipped} ${r.name}: skipped (up to date)\n`);
      return;
    }
    const dur = r.state === 'done' || r.state === 'failed' || r.state === 'restored' ? ` in ${formatDuration(r.durationMs)}` : '';
    let detail = '';
    const failure = failureOf(r);
    if (failure) detail = `: ${describeFailure(failure)}`;
    if (r.state === 'would-run') detail = r.reasons.length ? ` (${r.reasons.map(describeReason).join('; ')})` : '';
    if (r.state === 'done' && r.unchangedOutputs) detail = ' (outputs unchanged)';
    const label = r.state === 'restored' ? `restored from ${r.from}` : r.state;
    this.out.write(`${MARK[r.state]} ${r.name}: ${label}${dur}${detail}\n`);
  }

  summary(results: readonly StageResult[], totalMs: number): void {
    const count = (s: FinalState) => results.filter((r) => r.state === s).length;
    const parts = [
      `${count('done')} ran`,
      count('restored') ? `${count('restored')} restored` : '',
      `${count('skipped')} up to date`,
      count('would-run') ? `${count('would-run')} would run` : '',
      count('frozen') ? `${count('frozen')} frozen` : '',
      count('failed') ? `${count('failed')} failed` : '',
      count('blocked') + count('not-run') ? `${count('blocked') + count('not-run')} not run` : '',
      count('interrupted') ? `${count('interrupted')} interrupted` : '',
    ].filter(Boolean);
    this.out.write(`${results.length} stage${results.length === 1 ? '' : 's'}: ${parts.join(', ')} in ${formatDuration(totalMs)}\n`);
  }
}

/** Machine-readable: stage output goes to stderr so stdout holds exactly one JSON document. */
export class JsonReporter implements Reporter {
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly err: NodeJS.WritableStream,
  ) {}
  started(): void {}
  line(name: string, line: string): void {
    this.err.write(`${name} | ${line}\n`);
  }
  finished(): void {}
  summary(results: readonly StageResult[], totalMs: number): void {
    this.out.write(
      JSON.stringify(
        {
          ok: runOk(results),
          durationMs: Math.round(totalMs),
          stages: results.map((r) => {
            const failure = failureOf(r);
            const ms = durationOf(r);
            return {
              name: r.name,
              state: r.state,
              ...(r.state === 'restored' ? { from: r.from } : {}),
              ...(ms !== undefined ? { durationMs: Math.round(ms) } : {}),
              reasons: r.reasons.map((x) => ({ ...x, text: describeReason(x) })),
              // `error` is the one line a person reads; `failure` the same as data (its `kind` says which).
              ...(failure ? { error: describeFailure(failure), failure } : {}),
            };
          }),
        },
        null,
        2,
      ) + '\n',
    );
  }
}
