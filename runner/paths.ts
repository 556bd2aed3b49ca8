import path from 'node:path';

/** Repository-relative POSIX path; the one form paths take inside the engine. */
export type RepoPath = string & { readonly __brand: 'RepoPath' };

/**
 * Resolve `p` (relative to `wdir`, itself repo-relative) to a RepoPath.
 * Returns undefined when the path escapes the repository.
 */
export function toRepoPath(root: string, wdir: string, p: string): RepoPath | undefined {
  const abs = path.resolve(root, wdir, p);
  const rel = path.relative(root, abs);
  if (rel === '') return '.' as RepoPath;
  if (rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
  return rel.split(path.sep).join('/') as RepoPath;
}

/** True when `inner` is `outer` or lies inside it. */
export function isWithin(outer: string, inner: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith('/') ? outer : outer + '/');
}

export function isGlob(p: string): boolean {
  return /[*?[\]{}]/.test(p);
}
