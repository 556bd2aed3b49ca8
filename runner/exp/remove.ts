import fs from 'node:fs';
import { openWorkspace } from '../workspace.js';
import { UserError } from '../errors.js';
import type { Io } from '../cli-io.js';
import { liveRun, openStore } from './reap.js';

export function expRemoveCommand(io: Io, args: { names: string[]; all: boolean; queued: boolean }): number {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const store = openStore(io, ws.stateDir);
  const live = new Set(
    store
      .list()
      .filter((r) => liveRun(store, r))
      .map((r) => r.name),
  );
  const names = args.all
    ? store
        .list()
        .map((r) => r.name)
        .filter((n) => !live.has(n))
    : args.queued
      ? store
          .list()
          .filter((r) => r.status === 'queued')
          .map((r) => r.name)
      : args.names;
  if (!names.length && !(args.all && live.size)) throw new UserError({ message: 'name the experiments to remove, or pass --all or --queued' });
  for (const n of names) {
    // Its runner would record it again when it finishes; let it finish (or stop it) first.
    if (live.has(n))
      throw new UserError({
        message: `experiment '${n}' is running (pid ${store.read(n)?.lease?.pid}); nothing was removed`,
        hint: 'wait for it to finish, or stop its --run-all first',
      });
  }
  if (live.size && args.all) io.err(`kept ${live.size} running experiment${live.size === 1 ? '' : 's'}`);
  for (const n of names) store.remove(n);
  io.out(`removed ${names.length} experiment${names.length === 1 ? '' : 's'}`);
  if (fs.existsSync(store.dir) && fs.readdirSync(store.dir).length === 0) fs.rmdirSync(store.dir);
  return 0;
}
