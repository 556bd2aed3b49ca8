import { formatLocation, type Diagnostic } from './errors.js';

/**
 * Why a stage did not complete, as data: the reporter, `--json`, the event
 * log and tests read the kind, and only `describeFailure` turns it into text.
 * `hint` is what the user can do about it, said after the failure.
 */
export type StageFailure = (
  | { readonly kind: 'exit-code'; readonly code: number }
  | { readonly kind: 'signal'; readonly signal: string }
  /** The command could not be started at all (no such program, no permission). */
  | { readonly kind: 'spawn-error'; readonly message: string }
  /** It exited 0 without making some of its declared outputs. */
  | { readonly kind: 'missing-outputs'; readonly paths: readonly string[] }
  /** A dep it reads is not there (and no stage of this run makes it). */
  | { readonly kind: 'missing-dep'; readonly path: string }
  | { readonly kind: 'upstream-failed'; readonly stage: string }
  /** Stopped by Ctrl-C or SIGTERM; it runs again next time. */
  | { readonly kind: 'interrupted' }
  /** A module stage whose code does not compile: the bundler's diagnostics, with file:line:col. */
  | { readonly kind: 'compile-error'; readonly diagnostics: readonly Diagnostic[] }
  /** Running or restoring it would write outside the repository (a symlink appeared since the pipeline was read). */
  | { readonly kind: 'unsafe-path'; readonly message: string }
  /** A container stage's image is not there, or could not be built. */
  | { readonly kind: 'image-unavailable'; readonly message: string }
  /** The container engine could not start the container (not the stage's own failure). */
  | { readonly kind: 'container-start'; readonly message: string }
  /** Any other problem found while preparing or running it, said by the part that found it. */
  | { readonly kind: 'error'; readonly message: string }
) & { readonly hint?: string };

/** One line for the reporter, the event log and `--json`'s `error`. */
export function describeFailure(f: StageFailure): string {
  return `${failureText(f)}${f.hint ? ` (${f.hint})` : ''}`;
}

function failureText(f: StageFailure): string {
  switch (f.kind) {
    case 'exit-code':
      return `exit code ${f.code}`;
    case 'signal':
      return `killed by ${f.signal}`;
    case 'spawn-error':
      return `could not start: ${f.message}`;
    case 'missing-outputs':
      return `it did not produce ${f.paths.map((p) => `'${p}'`).join(', ')}`;
    case 'missing-dep':
      return `dep '${f.path}' does not exist`;
    case 'upstream-failed':
      return `upstream stage '${f.stage}' did not complete`;
    case 'interrupted':
      return 'interrupted; it will run again next time';
    case 'compile-error': {
      const first = f.diagnostics[0];
      if (!first) return 'cannot compile stage module';
      const more = f.diagnostics.length > 1 ? ` (and ${f.diagnostics.length - 1} more)` : '';
      return `cannot compile stage module: ${first.location ? formatLocation(first.location) + ': ' : ''}${first.message}${more}`;
    }
    case 'unsafe-path':
    case 'image-unavailable':
    case 'container-start':
    case 'error':
      return f.message;
  }
}
