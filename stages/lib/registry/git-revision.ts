import { execFileSync } from 'node:child_process';

/** HEAD's commit and whether the work tree differs from it; null outside a git repository. */
export function gitRevision(cwd: string): { commit: string; dirty: boolean } | null {
  try {
    const run = (args: string[]): string => execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const commit = run(['rev-parse', 'HEAD']);
    const dirty = run(['status', '--porcelain', '--untracked-files=no']) !== '';
    return { commit, dirty };
  } catch {
    return null;
  }
}
