import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

const gitRoots = new Map<string, boolean>();

/** Whether `root` is inside a git work tree (a `.git` folder or file in it or above it). No process spawned; asked once per run. */
function inGitRepo(root: string): boolean {
  let known = gitRoots.get(root);
  if (known === undefined) {
    known = false;
    for (let d = path.resolve(root); ; d = path.dirname(d)) {
      if (fs.existsSync(path.join(d, '.git'))) known = true;
      if (known || path.dirname(d) === d) break;
    }
    gitRoots.set(root, known);
  }
  return known;
}

function listedBeside(root: string, rel: string): boolean {
  const file = path.join(root, path.posix.dirname(rel), '.gitignore');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return false;
  }
  const name = path.posix.basename(rel);
  return text.split(/\r?\n/).some((l) => l.trim() === `/${name}` || l.trim() === `/${name}/`);
}

/**
 * Keep cached data out of git the way DVC does: `/name` in the `.gitignore`
 * of the folder beside it. Nothing is written when git already ignores the
 * path (a rule of the user's own, anywhere), or outside a git repository.
 * Returns the `.gitignore` files it changed.
 */
export function ensureGitIgnored(root: string, rels: readonly string[]): string[] {
  if (!rels.length || !inGitRepo(root)) return [];
  const candidates = rels.filter((r) => !listedBeside(root, r));
  if (!candidates.length) return [];
  // One git call for all of them: it prints the paths that some rule already ignores.
  const r = spawnSync('git', ['check-ignore', '--', ...candidates], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0 && r.status !== 1) return [];
  const ignored = new Set(r.stdout.split('\n').filter(Boolean));
  const changed: string[] = [];
  for (const rel of candidates) {
    if (ignored.has(rel)) continue;
    const giRel = path.posix.join(path.posix.dirname(rel), '.gitignore');
    const gi = path.join(root, giRel);
    let text = '';
    try {
      text = fs.readFileSync(gi, 'utf8');
    } catch {
      // a new .gitignore
    }
    if (text && !text.endsWith('\n')) text += '\n';
    fs.writeFileSync(gi, `${text}/${path.posix.basename(rel)}\n`);
    changed.push(giRel);
  }
  return changed;
}

/** Whether git already tracks a file under `rel` (then it cannot also be cached data). */
export function trackedByGit(root: string, rel: string): boolean {
  if (!inGitRepo(root)) return false;
  const r = spawnSync('git', ['ls-files', '--', rel], { cwd: root, encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '';
}
