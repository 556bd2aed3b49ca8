import type { VersionRef } from '../lib/bundle.js';
import { optionString, UsageError, type ParsedArgs } from '../cli/args.js';
import { modelChoice } from '../cli/inputs.js';
import { ModelHolder } from './model-holder.js';
import { buildApp, DEFAULT_SERVE_OPTIONS } from './app.js';

function whole(args: ParsedArgs, name: string, min: number, max: number, dflt: number): number {
  const text = optionString(args, name);
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got '${text}'`);
  return n;
}

/**
 * `leads serve`: starts the service, says where it listens (stderr), logs
 * requests as JSON lines (stdout), reloads on SIGHUP, and closes gracefully
 * (in-flight requests finish) on SIGTERM or SIGINT.
 */
export async function serve(root: string, args: ParsedArgs, fail: (message: string) => Error): Promise<void> {
  if (args.positionals.length) throw new UsageError(`unexpected argument '${args.positionals[0]}'`);
  const choice = modelChoice(args, false);
  const ref: VersionRef = choice.kind === 'registry' ? choice.ref : { stage: 'Staging' };
  const port = whole(args, 'port', 0, 65535, 8080);
  const host = optionString(args, 'host') ?? '127.0.0.1';
  let holder: ModelHolder;
  try {
    holder = ModelHolder.open(root, ref);
  } catch (e) {
    throw fail((e as Error).message);
  }
  const app = buildApp(holder, {
    bodyLimit: whole(args, 'body-limit', 1024, 64 << 20, DEFAULT_SERVE_OPTIONS.bodyLimit),
    requestTimeoutMs: whole(args, 'timeout-ms', 100, 600_000, DEFAULT_SERVE_OPTIONS.requestTimeoutMs),
    logLevel: args.options.has('quiet') ? false : 'info',
  });
  let address: string;
  try {
    address = await app.listen({ port, host });
  } catch (e) {
    throw fail(`cannot listen on ${host}:${port}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  process.on('SIGHUP', () => {
    holder.reload().then(
      (r) => process.stderr.write(`leads: reload: ${r.changed ? `now version ${r.version}` : `still version ${r.version}`}\n`),
      (e: Error) => process.stderr.write(`leads: reload failed, still serving version ${holder.current.version.version}: ${e.message}\n`),
    );
  });
  const stop = (signal: string) => {
    process.stderr.write(`leads: ${signal}: finishing in-flight requests\n`);
    void app.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  // Said last: whoever waits for this line may signal us at once.
  const v = holder.current.version;
  process.stderr.write(`leads: serving version ${v.version} (${v.name}, ${v.stage}; following ${holder.following}) on ${address}\n`);
}
