import fs from 'node:fs';
import os from 'node:os';
import { errnoCode } from './fs-util.js';

/**
 * Who holds something (a lease, a lock): a pid alone is not enough, since pids
 * are reused, so the process's start time is recorded with it, and the host,
 * since a pid means nothing on another machine sharing the folder.
 */
export interface Owner {
  readonly pid: number;
  /** Start time of the process in clock ticks since boot (Linux); absent where it cannot be read. */
  readonly start?: string;
  readonly host: string;
}

/** Field 22 of /proc/PID/stat: when the process started. Undefined off Linux or when it is gone. */
export function processStart(pid: number): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); a zombie has finished: it holds nothing any more.
  if (rest[0] === 'Z') return undefined;
  return rest[19];
}

export function currentOwner(pid: number = process.pid): Owner {
  const start = processStart(pid);
  return { pid, ...(start ? { start } : {}), host: os.hostname() };
}

/** Whether a process with this pid exists on this machine (EPERM: it does, but belongs to someone else). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) === 'EPERM';
  }
}

/**
 * Whether `o` is certainly gone, as far as this machine can tell. An owner on
 * another host is never known to be dead here (callers expire such leases by
 * their age instead).
 */
export function ownerDead(o: Owner): boolean {
  if (o.host !== os.hostname()) return false;
  if (!Number.isInteger(o.pid) || o.pid <= 0) return true;
  if (!pidExists(o.pid)) return true;
  if (o.start === undefined) return false;
  const now = processStart(o.pid);
  // Readable /proc but another start time: the pid was reused by an unrelated process.
  return now === undefined ? fs.existsSync('/proc/self/stat') : now !== o.start;
}
