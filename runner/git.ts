import { spawnSync } from 'node:child_process';
import { UserError } from './errors.js';

/** Read-only git access: files at a revision are read with `git show`, never by checking out. */
export function gitRevParse(root: string, rev: string): string | undefined {
  const r = spawnSync('git', ['rev-parse', '--verify', '--quiet', `${rev}^{commit}`], { cwd: root, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

export function currentRevision(root: string): string | undefined {
  return gitRevParse(root, 'HEAD');
}

function isGitRepo(root: string): boolean {
  return spawnSync('git', ['rev-parse', '--git-dir'], { cwd: root, encoding: 'utf8' }).status === 0;
}

/** Path of `root` inside its git work tree, so repository-relative paths can be mapped to git paths. */
function prefixOf(root: string): string {
  const r = spawnSync('git', ['rev-parse', '--show-prefix'], { cwd: root, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

/** Contents of a repo-relative file at a revision, or undefined if it did not exist there. */
export function gitShow(root: string, rev: string, relPath: string): string | undefined {
  const r = spawnSync('git', ['show', `${rev}:${prefixOf(root)}${relPath}`], { cwd: root, encoding: 'utf8', maxBuffer: 256 << 20 });
  return r.status === 0 ? r.stdout : undefined;
}

/** The same, as bytes: images and other binary files must not go through a text decoder. */
export function gitShowBytes(root: string, rev: string, relPath: string): Buffer | undefined {
  const r = spawnSync('git', ['show', `${rev}:${prefixOf(root)}${relPath}`], { cwd: root, maxBuffer: 256 << 20 });
  return r.status === 0 ? r.stdout : undefined;
}

export function requireRevision(root: string, rev: string): string {
  if (!isGitRepo(root)) throw new UserError({ message: `'${rev}' cannot be read: ${root} is not in a git repository` });
  const sha = gitRevParse(root, rev);
  if (!sha) throw new UserError({ message: `unknown git revision '${rev}'`, hint: 'use a branch, tag, commit or HEAD~N; "workspace" is the working tree' });
  return sha;
}

/** Commits named by a set of refs: 'branches', 'tags', or 'commits' (every commit reachable from any ref). */
export function gitRevisions(root: string, which: 'branches' | 'tags' | 'commits'): string[] {
  if (!isGitRepo(root)) throw new UserError({ message: `--all-${which} needs a git repository, and ${root} is not in one` });
  const args = which === 'commits' ? ['rev-list', '--all'] : ['for-each-ref', '--format=%(objectname)', which === 'branches' ? 'refs/heads' : 'refs/tags'];
  const r = spawnSync('git', args, { cwd: root, encoding: 'utf8', maxBuffer: 256 << 20 });
  return r.status === 0 ? [...new Set(r.stdout.split('\n').filter(Boolean))] : [];
}

/** Repo-relative paths of the files named `name` (in any folder) at a revision. */
export function gitFilesNamed(root: string, rev: string, name: string): string[] {
  // From `root`, ls-tree lists the files under it, relative to it.
  const r = spawnSync('git', ['ls-tree', '-r', '--name-only', rev], { cwd: root, encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) return [];
  return r.stdout.split('\n').filter((f) => f === name || f.endsWith(`/${name}`));
}
