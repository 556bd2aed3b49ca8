import path from 'node:path';
import type { Workspace } from '../workspace.js';
import { UserError, didYouMean, formatDiagnostic } from '../errors.js';
import { requireRevision } from '../git.js';
import { openLocalCache } from '../cache/open.js';
import { ExpStore } from '../exp/store.js';
import { experimentRevision, gitRevision, workspaceRevision, type PlotRevision } from './sources.js';
import { declaredPlots, type PlotDecl } from './decls.js';
import { NoPlotData, plotContent, type PlotContent } from './series.js';
import { vegaLiteSpec } from './templates.js';

/**
 * The declared plots of a workspace at some revisions and experiments, as
 * Vega-Lite specs and images: what `plots show/diff` renders (HTML or JSON)
 * and the UI overlays. One plot that cannot be read is reported in its own
 * entry; the others are still built.
 */

export interface PlotsRequest {
  /** Plot ids or paths they read; none = every declared plot. */
  readonly targets: readonly string[];
  /** Git revisions (or `workspace`) to compare; only with `diff`. */
  readonly revisions: readonly string[];
  readonly experiments: readonly string[];
  /** Compare revisions (`plots diff`); without it, the workspace alone. */
  readonly diff: boolean;
  /** Where relative targets are resolved from. */
  readonly cwd: string;
}

/** One plot: drawn (a spec and/or images), without data yet (`missing`), or unreadable (`error`, with its diagnostics). */
export type PlotEntry =
  | {
      readonly path: string;
      readonly template: string;
      readonly spec?: Record<string, unknown>;
      readonly images: { label: string; rev: string; path: string }[];
      readonly content: PlotContent;
    }
  | { readonly path: string; readonly missing: string }
  | {
      readonly path: string;
      readonly error: string;
      readonly diagnostics: string[];
    };

/** A target names a plot by its id, or by a path it reads (a file, a folder, or a file inside a plotted folder). */
function select(decls: PlotDecl[], targets: readonly string[], root: string, cwd: string): PlotDecl[] {
  if (!targets.length) return decls;
  return targets.flatMap((t) => {
    const rel = path.relative(root, path.resolve(cwd, t)).split(path.sep).join('/');
    const hit = decls.filter(
      (d) => d.id === t || d.id === rel || d.sources.some((s) => s.path === rel || s.path.startsWith(`${rel}/`) || rel.startsWith(`${s.path}/`)),
    );
    if (!hit.length) {
      const ids = decls.map((d) => d.id);
      const near = didYouMean(rel, ids);
      throw new UserError({
        message: `'${t}' is not a declared plot${near ? `; ${near}` : ''}`,
        hint: `plots: ${ids.join(', ')}`,
      });
    }
    return hit;
  });
}

/** The revisions a request compares: named git revisions (HEAD vs workspace for a bare diff), then experiments. */
function revisionsOf(ws: Workspace, req: PlotsRequest): PlotRevision[] {
  const store = openLocalCache(ws.stateDir).store;
  const revs: PlotRevision[] = [];
  const names = req.diff && !req.revisions.length && !req.experiments.length ? ['HEAD', 'workspace'] : req.revisions;
  for (const r of req.diff ? names : ['workspace'])
    revs.push(r === 'workspace' ? workspaceRevision(ws.root) : gitRevision(ws.root, r, requireRevision(ws.root, r), store));
  if (req.experiments.length) {
    const exps = new ExpStore(ws.stateDir);
    for (const n of req.experiments) {
      const rec = exps.get(n);
      if (!rec.lock)
        throw new UserError({
          message: `experiment '${n}' has no outputs (${rec.status})`,
        });
      revs.push(experimentRevision(n, rec.lock, store));
    }
  }
  return revs;
}

/** Bad targets, revisions or experiments throw a UserError; a plot that cannot be read is an `error` entry. */
export function buildPlots(ws: Workspace, req: PlotsRequest): { revisions: PlotRevision[]; plots: PlotEntry[] } {
  const decls = select(declaredPlots(ws.pipeline), req.targets, ws.root, req.cwd);
  if (!decls.length)
    throw new UserError({
      message: 'no plots are declared in pipeline.yaml',
      hint: 'declare them under a stage: plots: [path/to/data.csv]',
    });
  const revs = revisionsOf(ws, req);
  const plots: PlotEntry[] = [];
  for (const d of decls) {
    try {
      const content = plotContent(ws.root, d, revs);
      const spec = content.props ? vegaLiteSpec(content.props, content.rows) : undefined;
      const template = content.props ? (typeof content.props.template === 'string' ? content.props.template : content.props.template.file) : 'image';
      const images = content.images.map((img) => ({
        label: revs.length > 1 ? `${img.rev}: ${img.path}` : img.path,
        rev: img.rev,
        path: img.path,
      }));
      plots.push({
        path: d.id,
        template,
        ...(spec ? { spec } : {}),
        images,
        content,
      });
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      // Not made yet (as DVC does, a warning), not an error.
      if (e instanceof NoPlotData) plots.push({ path: d.id, missing: e.message });
      else {
        const diagnostics = e.diagnostics.map((x) => formatDiagnostic(x));
        plots.push({ path: d.id, error: diagnostics.join('\n'), diagnostics });
      }
    }
  }
  return { revisions: revs, plots };
}
