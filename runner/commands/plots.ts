import fs from 'node:fs';
import path from 'node:path';
import { openWorkspace } from '../workspace.js';
import { formatDiagnostic } from '../errors.js';
import { buildPlots } from '../plots/collect.js';
import type { PlotImage } from '../plots/series.js';
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

const MIME: Record<string, string> = { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', svg: 'image/svg+xml' };

/** An image inline, so the report stays one file; an SVG in <img> runs no scripts. */
function dataUri(img: PlotImage): string {
  const ext = /\.([a-z]+)$/i.exec(img.path)![1]!.toLowerCase();
  return `data:${MIME[ext]};base64,${img.bytes.toString('base64')}`;
}

export async function plotsCommand(io: Io, args: PlotsArgs): Promise<number> {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const { revisions: revs, plots } = buildPlots(ws, { ...args, cwd: io.cwd });
  const sections: Section[] = [];
  const specs: Record<string, unknown>[] = [];
  const notes: string[] = [];
  let failed = 0;
  for (const p of plots) {
    if ('missing' in p) {
      // Not made yet (as DVC does, a warning): the panel says so, the exit code stays 0.
      io.err(`warning: ${p.missing}`);
      specs.push({ path: p.path, missing: p.missing });
      sections.push({ title: p.path, caption: `not shown: ${p.missing}` });
      continue;
    }
    if ('error' in p) {
      failed++;
      for (const line of p.diagnostics) io.err(line);
      specs.push({ path: p.path, error: p.error });
      sections.push({ title: p.path, error: p.error });
      continue;
    }
    const { content, spec, images } = p;
    for (const m of content.missing) notes.push(m);
    specs.push({ path: p.path, template: p.template, ...(spec ? { spec } : {}), ...(images.length ? { images } : {}) });
    if (args.json) continue;
    let svg: string | undefined;
    if (spec) {
      const { renderSvg } = await import('../plots/render.js');
      try {
        svg = await renderSvg(spec);
      } catch (e) {
        // Reported in its panel like a plot that cannot be read; the others are still drawn.
        const error = formatDiagnostic({ message: `plot '${p.path}' cannot be drawn: ${(e as Error).message.split('\n')[0]}` });
        failed++;
        io.err(error);
        sections.push({ title: p.path, error });
        continue;
      }
    }
    const inline = images.map((img, k) => ({ label: img.label, src: dataUri(content.images[k]!) }));
    sections.push({
      title: p.path,
      ...(svg ? { svg } : {}),
      images: inline,
      caption: content.missing.length ? `not shown: ${content.missing.join('; ')}` : undefined,
    });
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
  io.out(
    `${drawn} plot${drawn === 1 ? '' : 's'} written to ${path.relative(io.cwd, file) || file}${notYet ? `; ${notYet} without data yet` : ''}${failed ? `; ${failed} could not be read (see the report)` : ''}`,
  );
  // The report is written either way; a plot that could not be read is still bad input.
  return failed ? 2 : 0;
}
