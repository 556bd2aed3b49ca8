import { describeReason, type Reason } from './staleness.js';

export type FinalState =
  | 'done'        // ran and succeeded
  | 'restored'    // outputs restored from the run-cache instead of running
  | 'skipped'     // up to date
  | 'frozen'      // frozen: never run by repro
  | 'failed'
  | 'blocked'     // an upstream stage failed
  | 'not-run'     // stopped after a failure elsewhere (no --keep-going)
  | 'interrupted'
  | 'would-run';  // --dry

export interface StageResult {
  readonly name: string;
  readonly state: FinalState;
  readonly reasons: readonly Reason[];
  readonly durationMs?: number;
  readonly error?: string;
  /** For 'restored': where the outputs came from. */
  readonly from?: 'cache' | 'run-cache';
  /** True when a stage ran but its outputs came out byte-identical, so downstream may stay skipped. */
  readonly unchangedOutputs?: boolean;
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
  done: '✓', restored: '↺', skipped: '·', frozen: '❄', failed: '✗', blocked: '-', 'not-run': '-', interrupted: '!', 'would-run': '?',
};

/** Lines a person can follow; with several jobs, stage output is prefixed by its stage name. */
export class HumanReporter implements Reporter {
  constructor(private readonly out: NodeJS.WritableStream, private readonly prefixOutput: boolean, private readonly verbose = false) {}

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
    const dur = r.durationMs !== undefined && (r.state === 'done' || r.state === 'failed' || r.state === 'restored') ? ` in ${formatDuration(r.durationMs)}` : '';
    let detail = '';
    if (r.state === 'failed' || r.state === 'blocked' || r.state === 'interrupted') detail = r.error ? `: ${r.error}` : '';
    if (r.state === 'would-run') detail = r.reasons.length ? ` (${r.reasons.map(describeReason).join('; ')})` : '';
    if (r.state === 'done' && r.unchangedOutputs) detail = ' (outputs unchanged)';
    const label = r.state === 'restored' ? `restored from ${r.from ?? 'run-cache'}` : r.state;
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
  constructor(private readonly out: NodeJS.WritableStream, private readonly err: NodeJS.WritableStream) {}
  started(): void {}
  line(name: string, line: string): void {
    this.err.write(`${name} | ${line}\n`);
  }
  finished(): void {}
  summary(results: readonly StageResult[], totalMs: number): void {
    const ok = results.every((r) => r.state !== 'failed' && r.state !== 'interrupted' && r.state !== 'blocked' && r.state !== 'not-run');
    this.out.write(
      JSON.stringify(
        {
          ok,
          durationMs: Math.round(totalMs),
          stages: results.map((r) => ({
            name: r.name,
            state: r.state,
            ...(r.from ? { from: r.from } : {}),
            ...(r.durationMs !== undefined ? { durationMs: Math.round(r.durationMs) } : {}),
            reasons: r.reasons.map((x) => ({ ...x, text: describeReason(x) })),
            ...(r.error ? { error: r.error } : {}),
          })),
        },
        null,
        2,
      ) + '\n',
    );
  }
}
