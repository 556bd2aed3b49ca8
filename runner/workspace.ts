import path from 'node:path';
import fs from 'node:fs';
import { findNestedPipelineFiles, loadPipeline, pipelineFileIn, PIPELINE_FILE, type Pipeline } from './config/pipeline.js';
import { Graph } from './graph.js';
import { Lockfile } from './lockfile.js';
import { StatCache } from './hash/stat-cache.js';
import { TreeHasher } from './hash/tree.js';
import { UserError } from './errors.js';
import { ParsedFileCache } from './config/parsed-cache.js';
import { guardFor } from './containment.js';

export const STATE_DIR = '.lockstep';

/** Everything a command needs about one repository, loaded once. */
export interface Workspace {
  readonly root: string;
  readonly stateDir: string;
  readonly pipeline: Pipeline;
  readonly graph: Graph;
  readonly lock: Lockfile;
  readonly statCache: StatCache;
  readonly hasher: TreeHasher;
  readonly parsedCache: ParsedFileCache;
}

/** Persist what this run learned about file contents; losing it only costs time. */
export function saveCaches(ws: Workspace): void {
  ws.statCache.save();
  ws.parsedCache.save();
}

/**
 * The repository root: the topmost folder upwards holding pipeline.yaml (or
 * dvc.yaml), not looking past one that holds .git, .lockstep or .dvc. From
 * a subfolder with a nested pipeline, that is still the repository's root,
 * as it is for DVC, so the graph always includes every pipeline file.
 */
export function findRoot(start: string): string {
  let dir = path.resolve(start);
  let found: string | undefined;
  let repoDir: string | undefined;
  for (;;) {
    if (pipelineFileIn(dir)) found = dir;
    const boundary = ['.git', STATE_DIR, '.dvc'].some((m) => fs.existsSync(path.join(dir, m)));
    if (boundary) repoDir ??= dir;
    const parent = path.dirname(dir);
    if ((boundary && found) || parent === dir) break;
    dir = parent;
  }
  if (found) return found;
  // A DVC repository may keep its dvc.yaml files in subfolders only.
  if (repoDir && findNestedPipelineFiles(repoDir, new Set()).length) return repoDir;
  throw new UserError({
    message: `no ${PIPELINE_FILE} found in ${start} or any parent folder`,
    hint: `create one (a DVC repository's dvc.yaml works too), or cd into the project`,
  });
}

export function openWorkspace(cwd: string, opts: { checkDeps?: boolean } = {}): Workspace {
  const root = findRoot(cwd);
  const stateDir = path.join(root, STATE_DIR);
  ensureStateDir(stateDir);
  // Reads and checks .lockstep/config: every command that opens the workspace refuses a broken one alike.
  guardFor(root);
  const parsedCache = ParsedFileCache.load(stateDir);
  const pipeline = loadPipeline(root, parsedCache);
  const graph = Graph.analyze(pipeline, { checkDeps: opts.checkDeps ?? true });
  const lock = Lockfile.read(root, parsedCache, pipeline.files);
  const statCache = StatCache.load(stateDir);
  return { root, stateDir, pipeline, graph, lock, statCache, hasher: new TreeHasher(statCache, root), parsedCache };
}

/**
 * .lockstep/ holds caches and local state; only `config` belongs in git, so the
 * folder ignores the rest itself (as DVC's .dvc/.gitignore does).
 */
function ensureStateDir(stateDir: string): void {
  const ignore = path.join(stateDir, '.gitignore');
  if (fs.existsSync(ignore)) return;
  try {
    fs.mkdirSync(stateDir, { recursive: true });
    fs.writeFileSync(ignore, '/*\n!/.gitignore\n!/config\n');
  } catch {
    // read-only checkout: commands that only read still work
  }
}
