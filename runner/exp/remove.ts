import fs from 'node:fs';
import { openWorkspace } from '../workspace.js';
import { UserError } from '../errors.js';
import type { Io } from '../cli-io.js';
import { ExpStore } from './store.js';

export function expRemoveCommand(io: Io, args: { names: string[]; all: boolean; queued: boolean }): number {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const store = new ExpStore(ws.stateDir);
  const names = args.all ? store.list().map((r) => r.name) : args.queued ? store.list().filter((r) => r.status === 'queued').map((r) => r.name) : args.names;
  if (!names.length) throw new UserError({ message: 'name the experiments to remove, or pass --all or --queued' });
  for (const n of names) store.remove(n);
  io.out(`removed ${names.length} experiment${names.length === 1 ? '' : 's'}`);
  if (fs.existsSync(store.dir) && fs.readdirSync(store.dir).length === 0) fs.rmdirSync(store.dir);
  return 0;
}
