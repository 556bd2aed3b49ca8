import { Command, CommanderError, Option } from 'commander';
import { EXIT, UserError, formatDiagnostic } from './errors.js';
import type { Io } from './cli-io.js';

/**
 * What both command-line programs (`lockstep`, `leads`) share: one argument
 * parser (commander), one set of exit codes, one way to turn a failure into
 * a line. A command's action only parses, calls and renders; what it returns
 * is the exit code.
 */

export { EXIT } from './errors.js';

type ExitCode = number;

/** A program whose commands report their exit code through `run`. */
export interface Program {
  readonly command: Command;
  /** Wraps an action: its result becomes the exit code. */
  action<A extends unknown[]>(fn: (...args: A) => Promise<ExitCode | void> | ExitCode | void): (...args: A) => Promise<void>;
  run(argv: readonly string[]): Promise<ExitCode>;
}

export function createProgram(name: string, description: string, io: Io, opts: { version?: string; errorPrefix?: string } = {}): Program {
  let code: ExitCode = EXIT.ok;
  const prefix = opts.errorPrefix ?? '';
  const root = new Command(name).description(description);
  // Settings given before subcommands are added are inherited by them.
  root
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureHelp({ sortSubcommands: false, showGlobalOptions: false, helpWidth: 100 })
    .configureOutput({
      writeOut: (s) => io.out(s.replace(/\n$/, '')),
      writeErr: (s) => io.err(s.replace(/\n$/, '')),
      // commander says "error: …" and "(Did you mean x?)"; keep our shape: one error line, then a hint line.
      outputError: (s, write) =>
        write(
          `${prefix}${s.replace(/\n$/, '').replace(
            /\n\(Did you mean (?:one of )?(.+)\?\)$/,
            (_m, c: string) =>
              `\n  hint: did you mean ${c
                .split(', ')
                .map((x) => `'${x}'`)
                .join(' or ')}?`,
          )}`,
        ),
    });
  if (opts.version) root.version(opts.version, '-V, --version');
  return {
    command: root,
    action(fn) {
      return async (...args) => {
        const r = await fn(...args);
        code = typeof r === 'number' ? r : EXIT.ok;
      };
    },
    async run(argv) {
      code = EXIT.ok;
      try {
        await root.parseAsync([...argv], { from: 'user' });
        return code;
      } catch (e) {
        return exitCodeOf(e, io, prefix);
      }
    },
  };
}

/** A failure turned into its lines on stderr and its exit code. */
export function exitCodeOf(e: unknown, io: Io, prefix = ''): ExitCode {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    // The message was printed by outputError already.
    return EXIT.usage;
  }
  if (e instanceof UserError) {
    for (const d of e.diagnostics) io.err(prefix + formatDiagnostic(d));
    return e.exitCode;
  }
  // A bug in the program itself: say so plainly; the stack only on request.
  io.err(`${prefix}error: internal error: ${(e as Error)?.message ?? String(e)}`);
  if (process.env.LOCKSTEP_DEBUG) io.err((e as Error)?.stack ?? '');
  else io.err('  (set LOCKSTEP_DEBUG=1 for details, and please report it)');
  return EXIT.internal;
}

/** A whole number option of at least `min` (commander hands options over as text). */
export function wholeNumber(name: string, min: number, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isInteger(n) || n < min || n > max) {
      throw new UserError({
        message: `${name} must be a whole number ${max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`}, got '${v}'`,
      });
    }
    return n;
  };
}

/** Collects a repeatable option's values. */
export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

export { Option };
