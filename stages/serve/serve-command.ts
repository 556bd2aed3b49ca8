import type { VersionRef } from '../lib/prediction/bundle.js';
import { ModelHolder } from './model-holder.js';
import { buildApp, DEFAULT_SERVE_OPTIONS } from './app.js';

export interface ServeArgs {
  readonly ref: VersionRef;
  readonly port: number;
  readonly host: string;
  readonly quiet: boolean;
  readonly bodyLimit?: number;
  readonly timeoutMs?: number;
}

/**
 * `leads serve`: starts the service, says where it listens (stderr), logs
 * requests as JSON lines (stdout), reloads on SIGHUP, and closes gracefully
 * (in-flight requests finish) on SIGTERM or SIGINT.
 */
export async function serve(root: string, args: ServeArgs, fail: (message: string) => Error): Promise<void> {
  const { ref, port, host } = args;
  let holder: ModelHolder;
  try {
    holder = await ModelHolder.open(root, ref, (line) => process.stderr.write(`leads: ${line}\n`));
  } catch (e) {
    throw fail((e as Error).message);
  }
  const app = buildApp(holder, {
    bodyLimit: args.bodyLimit ?? DEFAULT_SERVE_OPTIONS.bodyLimit,
    requestTimeoutMs: args.timeoutMs ?? DEFAULT_SERVE_OPTIONS.requestTimeoutMs,
    logLevel: args.quiet ? false : 'info',
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
