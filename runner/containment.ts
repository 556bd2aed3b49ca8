import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';
import { isWithin } from './paths.js';
import { allowedSymlinked } from './config/repo-config.js';

/**
 * Where a path really lands, as the kernel would resolve it when writing:
 * every existing component is lstat-ed and symlinks are substituted (a
 * dangling link too: writing through it would create its target); the part
 * that does not exist yet is appended as text. Checking the text of a path is
 * not enough: `link/d` with `link → ../outside` reads as inside the repository.
 */
export function resolveReal(abs: string): string {
  let rest = abs.split('/').filter((s) => s !== '');
  let cur = '/';
  let hops = 0;
  while (rest.length > 0) {
    const name = rest.shift()!;
    if (name === '.') continue;
    if (name === '..') {
      cur = path.dirname(cur);
      continue;
    }
    const next = path.join(cur, name);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(next);
    } catch {
      // Does not exist (yet): nothing below it can be a link.
      return path.resolve(next, ...rest);
    }
    if (st.isSymbolicLink()) {
      if (++hops > 40) return next; // a link loop: it cannot be written through either
      const target = fs.readlinkSync(next);
      if (path.isAbsolute(target)) cur = '/';
      rest = [...target.split('/').filter((s) => s !== ''), ...rest];
      continue;
    }
    cur = next;
  }
  return cur;
}

/** Paths of the repository that no output may be, or be inside, wherever it is spelled from. */
const STATE_DIRS = ['.git', '.lockstep'];

/**
 * Guards writes (outputs, checkouts) and stage working directories against
 * symlinks that lead outside the repository or into its own state. A path at
 * or under an `allow_symlinked` entry of .lockstep/config may lead outside
 * (a data disk linked in on purpose), never into .git or .lockstep.
 */
export class PathGuard {
  readonly rootReal: string;

  constructor(
    readonly root: string,
    private readonly allowed: readonly string[] = [],
  ) {
    this.rootReal = fs.realpathSync(root);
  }

  /**
   * Where repository path `rel` (normalised, POSIX) really lands. Resolved
   * parent first, so with a `memo` (one pipeline check) each folder shared by
   * many outputs is looked at once; a write-time check passes none and sees
   * the disk as it is now.
   */
  real(rel: string, memo?: Map<string, string>): string {
    if (rel === '.' || rel === '') return this.rootReal;
    const hit = memo?.get(rel);
    if (hit !== undefined) return hit;
    const slash = rel.lastIndexOf('/');
    const name = rel.slice(slash + 1);
    const parent = slash < 0 ? this.rootReal : this.real(rel.slice(0, slash), memo);
    let real: string;
    if (name === '..' || name === '.') real = path.resolve(parent, name);
    else {
      const candidate = path.join(parent, name);
      let link = false;
      try {
        link = fs.lstatSync(candidate).isSymbolicLink();
      } catch {
        // absent: nothing below it is a link yet
      }
      real = link ? resolveReal(candidate) : candidate;
    }
    memo?.set(rel, real);
    return real;
  }

  /** Why writing at repository path `rel` is unsafe, or undefined when it is not. */
  problem(rel: string, memo?: Map<string, string>): string | undefined {
    return this.problemOf(rel, this.real(rel, memo));
  }

  /** As `problem`, for a path already resolved to `real`. */
  problemOf(rel: string, real: string): string | undefined {
    for (const d of STATE_DIRS) {
      if (isWithin(path.join(this.rootReal, d), real)) return `it resolves through a symlink into ${d}/ (${real})`;
    }
    if (isWithin(this.rootReal, real)) return undefined;
    if (this.isAllowed(rel)) return undefined;
    return `it resolves through a symlink to ${real}, outside the repository`;
  }

  isAllowed(rel: string): boolean {
    return this.allowed.some((a) => isWithin(a, rel));
  }

  /** Throws (exit 2) when writing at `rel` would land outside the repository. */
  assertWritable(rel: string, what: string): void {
    const why = this.problem(rel);
    if (why) throw new UserError({ message: `refusing to write ${what} '${rel}': ${why}`, hint: ALLOW_HINT });
  }
}

export const ALLOW_HINT = "if the link is meant (a data disk), list the path under 'allow_symlinked:' in .lockstep/config";

/** One guard per repository root, so code deep in the cache that writes outputs need not be handed one. */
const guards = new Map<string, PathGuard>();

/** The guard of `root`, with the allow list of its .lockstep/config. */
export function guardFor(root: string): PathGuard {
  let g = guards.get(root);
  if (!g) {
    g = new PathGuard(root, allowedSymlinked(path.join(root, '.lockstep')));
    guards.set(root, g);
  }
  return g;
}
