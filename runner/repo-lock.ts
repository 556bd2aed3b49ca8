import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';
import { errnoCode } from './fs-util.js';

/**
 * One writer per repository: `repro` takes .lockstep/repo.lock (O_EXCL create)
 * so a second run cannot interleave writes to pipeline.lock or outputs. A lock
 * left by a process that no longer exists is taken over.
 */
export class RepoLock {
  private constructor(private readonly file: string) {}

  static async acquire(stateDir: string, what: string, waitMs: number): Promise<RepoLock> {
    fs.mkdirSync(stateDir, { recursive: true });
    const file = path.join(stateDir, 'repo.lock');
    const deadline = Date.now() + waitMs;
    for (;;) {
      try {
        fs.writeFileSync(file, JSON.stringify({ pid: process.pid, what, since: new Date().toISOString() }), { flag: 'wx' });
        return new RepoLock(file);
      } catch (e) {
        if (errnoCode(e) !== 'EEXIST') throw e;
      }
      const holder = readHolder(file);
      if (holder && !alive(holder.pid)) {
        fs.rmSync(file, { force: true }); // stale: its process is gone
        continue;
      }
      if (Date.now() >= deadline) {
        throw new UserError({
          message: `another lockstep (${holder ? `pid ${holder.pid}, running '${holder.what}' since ${holder.since}` : 'unknown process'}) holds the repository lock`,
          hint: `wait for it to finish, or pass --wait SECONDS to wait for it`,
        }, 3);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  release(): void {
    try {
      fs.unlinkSync(this.file);
    } catch {
      // already gone
    }
  }
}

function readHolder(file: string): { pid: number; what: string; since: string } | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Whether a process with this pid exists (EPERM: it does, but belongs to someone else). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) === 'EPERM';
  }
}
