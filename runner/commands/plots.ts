import fs from 'node:fs';
import path from 'node:path';
import { openWorkspace } from '../workspace.js';
import { UserError, didYouMean, formatDiagnostic } from '../errors.js';
import { requireRevision } from '../git.js';
import { openLocalCache } from '../cache/open.js';
import { ExpStore } from '../exp/store.js';
import { experimentRevision, gitRevision, workspaceRevision, type PlotRevision } from '../plots/sources.js';
import { declaredPlots, type PlotDecl } from '../plots/decls.js';
import { NoPlotData, plotContent, type PlotImage } from '../plots/series.js';
import { vegaLiteSpec } from '../plots/templates.js';
import { htmlReport, type Section } from '../plots/report.js';
import type { Io } from '../cli-io.js';

export interface PlotsArgs {
  readonly targets: string[];
  readonly revisions: string[];
  readonly experiments: string[];
  readonly outDir?: string;
  readonly json: boolean;
  readonly diff: boolean;
}

/** A target names a plot by its id, or by a path it reads (a file, a folder, or a file inside a plotted folder). */
function select(decls: PlotDecl[], targets: readonly string[], root: string, cwd: string): PlotDecl[] {
  if (!targets.length) return decls;
  return targets.flatMap((t) => {
    const rel = path.relative(root, path.resolve(cwd, t)).split(path.sep).join('/');
    const hit = decls.filter((d) => d.id === t || d.id === rel || d.sources.some((s) => s.path === rel || s.path.startsWith(`${rel}/`) || rel.startsWith(`${s.path}/`)));
    if (!hit.length) {
      const ids = decls.map((d) => d.id);
      const near = didYouMean(rel, ids);
      throw new UserError({ message: `'${t}' is not a declared plot${near ? `; ${near}` : ''}`, hint: `plots: ${ids.join(', ')}` });
    }
    return hit;
  });
}

const MIME: Record<string, string> = { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', svg: 'image/svg+xml' };

/** An image inline, so the report stays one file; an SVG in <img> runs no scripts. */
function dataUri(img: PlotImage): string {
  const ext = /\.([a-z]+)$/i.exec(img.path)![1]!.toLowerCase();
  return `data:${MIME[ext]};base64,${img.bytes.toString('base64')}`;
}

export async function plotsCommand(io: Io, args: PlotsArgs): Promise<number> {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const decls = select(declaredPlots(ws.pipeline), args.targets, ws.root, io.cwd);
  if (!decls.length) throw new UserError({ message: 'no plots are declared in pipeline.yaml', hint: 'declare them under a stage: plots: [path/to/data.csv]' });
  const store = openLocalCache(ws.stateDir).store;
  const revs: PlotRevision[] = [];
  const names = args.diff && !args.revisions.length && !args.experiments.length ? ['HEAD', 'workspace'] : args.revisions;
  for (const r of args.diff ? names : ['workspace']) revs.push(r === 'workspace' ? workspaceRevision(ws.root) : gitRevision(ws.root, r, requireRevision(ws.root, r), store));
  if (args.experiments.length) {
    const exps = new ExpStore(ws.stateDir);
    for (const n of args.experiments) {
      const rec = exps.get(n);
      if (!rec.lock) throw new UserError({ message: `experiment '${n}' has no outputs (${rec.status})` });
      revs.push(experimentRevision(n, rec.lock, store));
    }
  }

  const sections: Section[] = [];
  const specs: Record<string, unknown>[] = [];
  const notes: string[] = [];
  let failed = 0;
  for (const d of decls) {
    // One plot that cannot be read is reported in its own panel; the others are still drawn.
    try {
      const content = plotContent(ws.root, d, revs);
      for (const m of content.missing) notes.push(m);
      const spec = content.props ? vegaLiteSpec(content.props, content.rows) : undefined;
      const template = content.props ? (typeof content.props.template === 'string' ? content.props.template : content.props.template.file) : 'image';
      const images = content.images.map((img) => ({ label: revs.length > 1 ? `${img.rev}: ${img.path}` : img.path, rev: img.rev, path: img.path }));
      specs.push({ path: d.id, template, ...(spec ? { spec } : {}), ...(images.length ? { images } : {}) });
      if (!args.json) {
        let svg: string | undefined;
        if (spec) {
          const { renderSvg } = await import('../plots/render.js');
          try {
            svg = await renderSvg(spec);
          } catch (e) {
            throw new UserError({ message: `plot '${d.id}' cannot be drawn: ${(e as Error).message.split('\n')[0]}` });
          }
        }
        const inline = images.map((img, k) => ({ label: img.label, src: dataUri(content.images[k]!) }));
        sections.push({ title: d.id, ...(svg ? { svg } : {}), images: inline, caption: content.missing.length ? `not shown: ${content.missing.join('; ')}` : undefined });
      }
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      if (e instanceof NoPlotData) {
        // Not made yet (as DVC does, a warning): the panel says so, the exit code stays 0.
        io.err(`warning: ${e.message}`);
        specs.push({ path: d.id, missing: e.message });
        sections.push({ title: d.id, caption: `not shown: ${e.message}` });
        continue;
      }
      failed++;
      for (const diag of e.diagnostics) io.err(formatDiagnostic(diag));
      const text = e.diagnostics.map((x) => formatDiagnostic(x)).join('\n');
      specs.push({ path: d.id, error: text });
      sections.push({ title: d.id, error: text });
    }
  }
  if (args.json) {
    io.out(JSON.stringify({ revisions: revs.map((r) => r.name), plots: specs }, null, 2));
    return failed ? 2 : 0;
  }
  const outDir = path.resolve(io.cwd, args.outDir ?? 'lockstep_plots');
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, 'index.html');
  const subtitle = args.diff ? `Comparing ${revs.map((r) => r.name).join(', ')}` : 'Workspace';
  fs.writeFileSync(file, htmlReport('Lockstep plots', subtitle, sections));
  for (const n of notes) io.err(`warning: ${n}`);
  const drawn = sections.filter((s) => s.svg || s.images?.length).length;
  const notYet = specs.filter((x) => 'missing' in x).length;
  io.out(`${drawn} plot${drawn === 1 ? '' : 's'} written to ${path.relative(io.cwd, file) || file}${notYet ? `; ${notYet} without data yet` : ''}${failed ? `; ${failed} could not be read (see the report)` : ''}`);
  // The report is written either way; a plot that could not be read is still bad input.
  return failed ? 2 : 0;
}
