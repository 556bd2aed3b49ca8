import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXIT, UserError } from './errors.js';
import { errnoCode } from './fs-util.js';
import { currentOwner, ownerDead } from './owner.js';

export interface LockKind {
  readonly file: string;
  readonly label: string;
  readonly hint: string;
}

const REPO: LockKind = { file: 'repo.lock', label: 'the repository lock', hint: 'wait for it to finish, or pass --wait SECONDS to wait for it' };

/**
 * Held by `gc` while it decides and removes, and briefly by an experiment
 * runner while it makes sure the cache holds what the experiment needs and
 * records it: so gc either sees the record or the record's objects are put
 * back, never an experiment recorded with objects gc just removed. Separate
 * from the repository lock, which a long `repro` in the workspace holds.
 */
export const GC_LOCK: LockKind = { file: 'gc.lock', label: 'the cache gc lock', hint: "wait for 'lockstep gc' to finish" };

/**
 * One writer per repository: `repro` takes .lockstep/repo.lock (O_EXCL create)
 * so a second run cannot interleave writes to pipeline.lock or outputs. A lock
 * left by a process that no longer exists is taken over.
 */
export class RepoLock {
  private constructor(private readonly file: string) {}

  static async acquire(stateDir: string, what: string, waitMs: number, kind: LockKind = REPO): Promise<RepoLock> {
    fs.mkdirSync(stateDir, { recursive: true });
    const file = path.join(stateDir, kind.file);
    const deadline = Date.now() + waitMs;
    for (;;) {
      try {
        fs.writeFileSync(file, JSON.stringify({ ...currentOwner(), what, since: new Date().toISOString() }), { flag: 'wx' });
        return new RepoLock(file);
      } catch (e) {
        if (errnoCode(e) !== 'EEXIST') throw e;
      }
      const holder = readHolder(file);
      if (holder && ownerDead({ host: os.hostname(), ...holder })) {
        fs.rmSync(file, { force: true }); // stale: its process is gone
        continue;
      }
      if (Date.now() >= deadline) {
        throw new UserError(
          {
            message: `another lockstep (${holder ? `pid ${holder.pid}, running '${holder.what}' since ${holder.since}` : 'unknown process'}) holds ${kind.label}`,
            hint: kind.hint,
          },
          EXIT.busy,
        );
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

function readHolder(file: string): { pid: number; start?: string; host?: string; what: string; since: string } | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}
