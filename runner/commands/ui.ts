import { findRoot, openWorkspace } from '../workspace.js';
import { UserError } from '../errors.js';
import type { Io } from '../cli-io.js';

export interface UiArgs {
  readonly port: number;
  readonly host: string;
}

/** `lockstep ui`: serve the web app until SIGINT/SIGTERM. */
export async function uiCommand(io: Io, args: UiArgs): Promise<number> {
  const root = findRoot(io.cwd);
  openWorkspace(root, { checkDeps: false }); // a broken pipeline.yaml is reported here, with its location, not as a page error
  const { buildUiApp } = await import('../ui/server.js');
  const app = buildUiApp(root);
  try {
    await app.listen({ port: args.port, host: args.host });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      throw new UserError({ message: `port ${args.port} on ${args.host} is in use`, hint: 'choose another with --port N (0 picks a free one)' });
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new UserError({ message: `cannot listen on host '${args.host}'` });
    throw e;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : args.port;
  const shownHost = args.host.includes(':') ? `[${args.host}]` : args.host;
  io.out(`lockstep ui: http://${shownHost}:${port}/experiments   (Ctrl-C stops it)`);
  if (!['127.0.0.1', 'localhost', '::1'].includes(args.host))
    io.err(`warning: listening on ${args.host}: anyone who can reach this port can read the experiments and move registry versions`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await app.close();
  return 0;
}
