import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { isGitRepo } from '../git.js';
import { STATE_DIR, type Workspace } from '../workspace.js';

/** Never copied: history, installed packages (linked instead) and lockstep's own state. */
const SKIP = new Set(['.git', 'node_modules', STATE_DIR]);

/**
 * A throw-away copy of the repository for one queued experiment, so the user's
 * workspace is never touched. Outputs recorded in the lock are copied too, so
 * stages whose inputs the experiment does not change stay skipped.
 */
export function makeTempWorkspace(ws: Workspace, dir: string): void {
  fs.mkdirSync(dir); // a fresh name (see reap.ts): an existing folder is not ours to fill
  const files = new Set(listFiles(ws.root));
  for (const entry of ws.lock.stages.values()) for (const o of entry.outs) files.add(o.path);
  for (const rel of files) copyPath(path.join(ws.root, rel), path.join(dir, rel));
  shareSetup(ws, dir);
}

/**
 * A throw-away workspace holding exactly the files of `commit` (which must be
 * in ws's git repository), for a worker running a queued job. Outputs are not
 * in git: `repro --pull` restores them from the remote as the commit's
 * pipeline.lock records them.
 */
export function makeWorkspaceAt(ws: Workspace, commit: string, prefix = 'lockstep-job-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}${process.pid}-`));
  const sub = gitPrefix(ws.root);
  const tar = path.join(dir, '.lockstep-commit.tar');
  const archive = spawnSync('git', ['archive', '--format=tar', '-o', tar, sub ? `${commit}:${sub}` : commit], { cwd: ws.root, encoding: 'utf8' });
  const untar = archive.status === 0 ? spawnSync('tar', ['-xf', tar, '-C', dir], { encoding: 'utf8' }) : undefined;
  fs.rmSync(tar, { force: true });
  if (archive.status !== 0 || untar?.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`cannot export commit ${commit}: ${(archive.stderr || untar?.stderr || '').trim()}`);
  }
  shareSetup(ws, dir);
  return dir;
}

/** What every temporary workspace borrows from the real one: installed packages (linked) and this machine's settings. */
function shareSetup(ws: Workspace, dir: string): void {
  const nm = path.join(ws.root, 'node_modules');
  if (fs.existsSync(nm) && !fs.existsSync(path.join(dir, 'node_modules'))) fs.symlinkSync(nm, path.join(dir, 'node_modules'), 'dir');
  for (const f of ['config', 'config.local']) {
    const src = path.join(ws.stateDir, f);
    if (fs.existsSync(src)) copyPath(src, path.join(dir, STATE_DIR, f));
  }
}

function gitPrefix(root: string): string {
  const r = spawnSync('git', ['rev-parse', '--show-prefix'], { cwd: root, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().replace(/\/$/, '') : '';
}

function listFiles(root: string): string[] {
  if (isGitRepo(root)) {
    const r = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8', maxBuffer: 256 << 20 });
    if (r.status === 0) return r.stdout.split('\0').filter((f) => f && !SKIP.has(f.split('/')[0]!) && fs.existsSync(path.join(root, f)));
  }
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (!rel && SKIP.has(e.name)) continue;
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out;
}

function copyPath(src: string, dst: string): void {
  if (!fs.existsSync(src)) return;
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.cpSync(src, dst, { recursive: true, dereference: false, errorOnExist: false });
}
