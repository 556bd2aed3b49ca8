import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { gitShowBytes } from '../git.js';
import { Lockfile, LOCK_FILE, type LockEntry } from '../lockfile.js';
import { isDirHash } from '../cache/layout.js';
import type { ObjectStore } from '../cache/object-store.js';

/** A plot file's content as it was at some revision: data (text) or an image (bytes). */
export interface PlotFile {
  /** Repo-relative path of the file (inside the declared plot path when that is a folder). */
  readonly path: string;
  readonly bytes: Buffer;
}

export const fileText = (f: PlotFile): string => f.bytes.toString('utf8');

/**
 * Where plot data is read from. Plot outputs are often cached rather than
 * committed, so a revision's files come from git when git has them, and
 * otherwise from the cache, by the hash that revision's pipeline.lock records
 * (the same for an experiment's recorded lock entries).
 */
export interface PlotRevision {
  readonly name: string;
  files(plotPath: string): PlotFile[] | { readonly missing: string };
}

const DATA_FILE = /\.(json|csv|tsv|ya?ml)$/i;
/** Images DVC shows as they are (DVCLive's `plots/images/`, a confusion-matrix PNG, …). */
export const IMAGE_FILE = /\.(png|jpe?g|gif|svg)$/i;
const PLOT_FILE = (f: string) => DATA_FILE.test(f) || IMAGE_FILE.test(f);

export function workspaceRevision(root: string): PlotRevision {
  return {
    name: 'workspace',
    files(plotPath) {
      const abs = path.join(root, plotPath);
      let st: fs.Stats;
      try {
        st = fs.statSync(abs);
      } catch {
        return { missing: `'${plotPath}' does not exist (run the stage that makes it: lockstep repro)` };
      }
      if (!st.isDirectory()) return [{ path: plotPath, bytes: fs.readFileSync(abs) }];
      return (fs.readdirSync(abs, { recursive: true }) as string[])
        .map((f) => f.split(path.sep).join('/'))
        .filter((f) => PLOT_FILE(f) && fs.statSync(path.join(abs, f)).isFile())
        .sort()
        .map((f) => ({ path: `${plotPath}/${f}`, bytes: fs.readFileSync(path.join(abs, f)) }));
    },
  };
}

/**
 * Outputs recorded by lock entries, read from the local cache. The plot may be
 * the output itself or lie inside an output folder (DVCLive's
 * `dvclive/plots/metrics` when the stage's output is `dvclive`).
 */
function fromLock(entries: Iterable<LockEntry>, store: ObjectStore, plotPath: string, where: string): PlotFile[] | { missing: string } {
  for (const e of entries) {
    const out = e.outs.find((o) => o.path === plotPath || plotPath.startsWith(`${o.path}/`));
    if (!out) continue;
    const obj = store.pathOf(out.hash);
    if (!fs.existsSync(obj)) return { missing: `'${out.path}' at ${where} is not in the cache (lockstep pull, or fetch it from a remote)` };
    if (!isDirHash(out.hash))
      return out.path === plotPath ? [{ path: plotPath, bytes: fs.readFileSync(obj) }] : { missing: `'${plotPath}' is not recorded at ${where}` };
    const inner = out.path === plotPath ? '' : plotPath.slice(out.path.length + 1);
    const manifest = JSON.parse(fs.readFileSync(obj, 'utf8')) as { relpath: string; hash: string }[];
    const files: PlotFile[] = [];
    for (const m of manifest) {
      const under =
        inner === ''
          ? m.relpath
          : m.relpath === inner
            ? path.posix.basename(m.relpath)
            : m.relpath.startsWith(`${inner}/`)
              ? m.relpath.slice(inner.length + 1)
              : undefined;
      if (under === undefined || !PLOT_FILE(m.relpath)) continue;
      const f = store.pathOf(m.hash);
      if (!fs.existsSync(f)) return { missing: `'${out.path}/${m.relpath}' at ${where} is not in the cache` };
      files.push({ path: m.relpath === inner ? plotPath : `${plotPath}/${under}`, bytes: fs.readFileSync(f) });
    }
    if (!files.length) return { missing: `'${plotPath}' is not recorded at ${where}` };
    return files;
  }
  return { missing: `'${plotPath}' is not recorded at ${where}` };
}

export function gitRevision(root: string, rev: string, sha: string, store: ObjectStore): PlotRevision {
  let lock: Map<string, LockEntry> | undefined;
  return {
    name: rev,
    files(plotPath) {
      // Paths come back relative to `root` (git's default), whether plotPath is a file or a folder.
      const ls = spawnSync('git', ['ls-tree', '-r', '--name-only', sha, '--', plotPath], { cwd: root, encoding: 'utf8' });
      const listed = ls.status === 0 ? ls.stdout.split('\n').filter((f) => f === plotPath || (f.startsWith(`${plotPath}/`) && PLOT_FILE(f))) : [];
      if (listed.length) return listed.sort().map((f) => ({ path: f, bytes: gitShowBytes(root, sha, f) ?? Buffer.alloc(0) }));
      if (!lock) {
        const lockText = gitShowBytes(root, sha, LOCK_FILE)?.toString('utf8');
        lock = lockText ? Lockfile.parseText(lockText, `${rev}:${LOCK_FILE}`) : new Map();
      }
      return fromLock(lock.values(), store, plotPath, rev);
    },
  };
}

export function experimentRevision(name: string, lock: Readonly<Record<string, LockEntry>>, store: ObjectStore): PlotRevision {
  return { name, files: (plotPath) => fromLock(Object.values(lock), store, plotPath, `experiment '${name}'`) };
}
