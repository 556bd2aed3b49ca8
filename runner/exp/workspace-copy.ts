import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { STATE_DIR, type Workspace } from '../workspace.js';
import { shareBuilds } from '../module-build.js';

/** Never copied: history, installed packages (linked instead) and lockstep's own state. */
const SKIP = new Set(['.git', 'node_modules', STATE_DIR]);

/**
 * A throw-away copy of the repository for one queued experiment, so the user's
 * workspace is never touched. Outputs recorded in the lock are copied too, so
 * stages whose inputs the experiment does not change stay skipped.
 *
 * Every file is a real copy (a reflink where the file system has them), never
 * a hard link: a stage writing into a file in place must not reach the
 * workspace through a shared inode. The copies are made a few at a time on
 * libuv's threads, which hides the disk's latency (each copy is a few
 * syscalls and mostly waiting); `fs.cpSync` did them one by one.
 */
export async function makeTempWorkspace(ws: Workspace, dir: string): Promise<void> {
  fs.mkdirSync(dir); // a fresh name (see reap.ts): an existing folder is not ours to fill
  const files = new Set(listFiles(ws.root));
  for (const entry of ws.lock.stages.values()) for (const o of entry.outs) files.add(o.path);
  await copyAll(ws.root, dir, [...files]);
  shareSetup(ws, dir);
  await shareBuilds(ws.root, ws.stateDir, dir, path.join(dir, STATE_DIR));
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
  // Outside a git repository ls-files fails, and we walk instead (one spawn, not a `rev-parse` first).
  const r = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status === 0) return r.stdout.split('\0').filter((f) => f && !SKIP.has(f.split('/')[0]!));
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

/**
 * Files and symlinks under `rels` (repository-relative; folders are walked),
 * copied from `src` to `dst`. Folders are made first, a level at a time, then
 * the files; each step 16 at a time (a synchronous mkdir per folder alone took
 * 0.2 s of a lead-pipeline copy on this disk).
 */
async function copyAll(src: string, dst: string, rels: readonly string[]): Promise<void> {
  const jobs: (() => Promise<void>)[] = [];
  const dirs = new Set<string>();
  const seen = new Set<string>(); // an output folder may hold files also listed on their own
  const add = (rel: string, st: fs.Stats | fs.Dirent) => {
    const from = path.join(src, rel);
    const to = path.join(dst, rel);
    if (st.isDirectory()) {
      dirs.add(to);
      for (const e of fs.readdirSync(from, { withFileTypes: true })) add(`${rel}/${e.name}`, e);
      return;
    }
    if (seen.has(rel)) return;
    seen.add(rel);
    dirs.add(path.dirname(to));
    if (st.isSymbolicLink()) jobs.push(async () => fs.promises.symlink(await fs.promises.readlink(from), to));
    else if (st.isFile()) jobs.push(() => fs.promises.copyFile(from, to, fs.constants.COPYFILE_FICLONE));
  };
  for (const rel of rels) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(path.join(src, rel));
    } catch {
      continue; // listed but deleted, or an output not produced: nothing to copy
    }
    add(rel, st);
  }
  for (const level of foldersByDepth(dst, dirs)) await inParallel(level.map((d) => () => fs.promises.mkdir(d).then(() => undefined)));
  await inParallel(jobs);
}

/** Every folder strictly below `root` that `dirs` needs, ancestors included, grouped by depth (shallowest first). */
function foldersByDepth(root: string, dirs: Iterable<string>): string[][] {
  const all = new Set<string>();
  for (let d of dirs) {
    while (d !== root && d.startsWith(root + path.sep) && !all.has(d)) {
      all.add(d);
      d = path.dirname(d);
    }
  }
  const levels: string[][] = [];
  for (const d of all) (levels[d.split(path.sep).length] ??= []).push(d);
  return levels.filter(Boolean);
}

async function inParallel(jobs: readonly (() => Promise<void>)[], width = 16): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) await jobs[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(width, jobs.length) }, worker));
}

function copyPath(src: string, dst: string): void {
  if (!fs.existsSync(src)) return;
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.cpSync(src, dst, { recursive: true, dereference: false, errorOnExist: false });
}
