/**
 * Errors are values: every user-facing problem is a Diagnostic with a location
 * where one is known. They are turned into text only at the CLI edge, so the
 * core never prints and never throws raw exceptions at users.
 */
export interface SourceLocation {
  readonly file: string;
  readonly line?: number;
  readonly column?: number;
}

export interface Diagnostic {
  readonly message: string;
  readonly location?: SourceLocation;
  readonly hint?: string;
}

/** The exit codes of both programs (lockstep, leads), named once. */
export const EXIT = {
  ok: 0,
  /** The work failed: a stage, a transfer, a check (the message says which). */
  failure: 1,
  /** The input was wrong: a command line, a configuration file, a path. Nothing was changed. */
  usage: 2,
  /** Another lockstep holds the repository (`repro --wait SECONDS` waits for it instead). */
  busy: 3,
  /** A bug in the program itself (sysexits' EX_SOFTWARE). */
  internal: 70,
} as const;

/** Thrown to carry diagnostics up to the CLI edge through async call chains. */
export class UserError extends Error {
  readonly diagnostics: readonly Diagnostic[];
  readonly exitCode: number;
  constructor(diagnostics: Diagnostic | readonly Diagnostic[], exitCode: number = EXIT.usage) {
    const list = Array.isArray(diagnostics) ? diagnostics : [diagnostics as Diagnostic];
    super(list.map((d) => d.message).join('; '));
    this.diagnostics = list;
    this.exitCode = exitCode;
  }
}

export function formatLocation(loc: SourceLocation): string {
  let s = loc.file;
  if (loc.line !== undefined) {
    s += `:${loc.line}`;
    if (loc.column !== undefined) s += `:${loc.column}`;
  }
  return s;
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = d.location ? `${formatLocation(d.location)}: ` : '';
  const hint = d.hint ? `\n  hint: ${d.hint}` : '';
  return `${where}error: ${d.message}${hint}`;
}

/** The closest candidate by edit distance, if it is close enough to be a plausible typo. */
function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) {
      bestDist = d;
      best = c;
    }
  }
  const limit = Math.max(2, Math.ceil(word.length * 0.4));
  return bestDist <= limit ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const c = closest(word, candidates);
  return c ? `did you mean '${c}'?` : undefined;
}
