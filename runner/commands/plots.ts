import fs from 'node:fs';
import path from 'node:path';
import { openWorkspace, type Workspace } from '../workspace.js';
import { UserError, didYouMean } from '../errors.js';
import { requireRevision } from '../git.js';
import { openLocalCache } from '../cache/open.js';
import { ExpStore } from '../exp/store.js';
import { experimentRevision, gitRevision, workspaceRevision, type PlotRevision } from '../plots/sources.js';
import { parsePlotFile, type Row } from '../plots/data.js';
import { plotProps, vegaLiteSpec } from '../plots/templates.js';
import { htmlReport, type Section } from '../plots/report.js';
import type { Io } from '../cli-io.js';

export interface PlotDecl {
  readonly path: string;
  readonly props: Readonly<Record<string, unknown>>;
}

/** Plots declared under stages' `plots:` and in the top-level `plots:` section. */
export function declaredPlots(ws: Workspace): PlotDecl[] {
  const out: PlotDecl[] = [];
  for (const s of ws.pipeline.stages.values()) for (const o of s.outs) if (o.kind === 'plot') out.push({ path: o.path, props: o.plot ?? {} });
  for (const p of ws.pipeline.plots) if (!out.some((d) => d.path === p.path)) out.push(p);
  return out;
}

export interface PlotsArgs {
  readonly targets: string[];
  readonly revisions: string[];
  readonly experiments: string[];
  readonly outDir?: string;
  readonly json: boolean;
  readonly diff: boolean;
}

function select(decls: PlotDecl[], targets: readonly string[], root: string, cwd: string): PlotDecl[] {
  if (!targets.length) return decls;
  return targets.flatMap((t) => {
    const rel = path.relative(root, path.resolve(cwd, t)).split(path.sep).join('/');
    const hit = decls.filter((d) => d.path === rel || d.path.startsWith(`${rel}/`) || rel.startsWith(`${d.path}/`));
    if (!hit.length) {
      const near = didYouMean(rel, decls.map((d) => d.path));
      throw new UserError({ message: `'${t}' is not a declared plot${near ? `; ${near}` : ''}`, hint: `plots: ${decls.map((d) => d.path).join(', ')}` });
    }
    return hit;
  });
}

/** A file's series name: its path inside the plot folder without the extension (the model, for the lead pipeline). */
function stem(plotPath: string, filePath: string): string {
  const inner = filePath === plotPath ? path.basename(filePath) : filePath.slice(plotPath.length + 1);
  return inner.replace(/\.(json|csv|tsv)$/i, '');
}

export async function plotsCommand(io: Io, args: PlotsArgs): Promise<number> {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const decls = select(declaredPlots(ws), args.targets, ws.root, io.cwd);
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
  for (const d of decls) {
    const rows: Row[] = [];
    const missing: string[] = [];
    for (const rev of revs) {
      const files = rev.files(d.path);
      if ('missing' in files) {
        missing.push(files.missing);
        continue;
      }
      for (const f of files) {
        const parsed = parsePlotFile(f, rev.name);
        const series = [revs.length > 1 ? rev.name : '', files.length > 1 || f.path !== d.path ? stem(d.path, f.path) : ''].filter(Boolean).join(' · ') || rev.name;
        parsed.forEach((r, i) => rows.push({ step: i, ...r, series, rev: rev.name }));
      }
    }
    if (!rows.length) throw new UserError({ message: `no data for plot '${d.path}': ${missing.join('; ')}` });
    for (const m of missing) notes.push(m);
    const props = plotProps(d.path, d.props, rows);
    const spec = vegaLiteSpec(props, rows);
    specs.push({ path: d.path, template: props.template, spec });
    if (!args.json) {
      const { renderSvg } = await import('../plots/render.js');
      sections.push({ title: d.path, svg: await renderSvg(spec), caption: missing.length ? `not shown: ${missing.join('; ')}` : undefined });
    }
  }
  if (args.json) {
    io.out(JSON.stringify({ revisions: revs.map((r) => r.name), plots: specs }, null, 2));
    return 0;
  }
  const outDir = path.resolve(io.cwd, args.outDir ?? 'lockstep_plots');
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, 'index.html');
  const subtitle = args.diff ? `Comparing ${revs.map((r) => r.name).join(', ')}` : 'Workspace';
  fs.writeFileSync(file, htmlReport('Lockstep plots', subtitle, sections));
  for (const n of notes) io.err(`warning: ${n}`);
  io.out(`${sections.length} plot${sections.length === 1 ? '' : 's'} written to ${path.relative(io.cwd, file) || file}`);
  return 0;
}
