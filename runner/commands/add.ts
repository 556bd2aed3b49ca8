import path from 'node:path';
import { openWorkspace, saveCaches, findRoot, STATE_DIR } from '../workspace.js';
import { RepoLock } from '../repo-lock.js';
import { UserError } from '../errors.js';
import { addData } from '../cache/add.js';
import type { Io } from '../cli-io.js';

/** `lockstep add PATH…`: track data that no stage makes (see cache/add.ts). */
export async function addCommand(io: Io, args: { paths: string[] }): Promise<number> {
  if (!args.paths.length) throw new UserError({ message: 'add needs the paths of the files or folders to track', hint: 'lockstep add data/raw.csv' });
  const repoLock = await RepoLock.acquire(path.join(findRoot(io.cwd), STATE_DIR), 'add', 0);
  try {
    const ws = openWorkspace(io.cwd, { checkDeps: false });
    const { added, ignores } = await addData(ws, {
      cwd: io.cwd,
      paths: args.paths,
      onAdded: (a) =>
        io.out(`added ${a.path}${a.nfiles !== undefined ? ` (${a.nfiles} file${a.nfiles === 1 ? '' : 's'})` : ''}: ${a.pointer} (xxh64 ${a.hash})`),
    });
    saveCaches(ws);
    io.out(`\nTo track the changes with git, run:\n    git add ${[...added.map((a) => a.pointer), ...ignores].join(' ')}`);
    return 0;
  } finally {
    repoLock.release();
  }
}
