import path from 'node:path';
import { UserError } from '../errors.js';
import { parsePlotFile, type Row } from './data.js';
import type { PlotDecl } from './decls.js';
import { IMAGE_FILE, type PlotRevision } from './sources.js';
import { isConfusion, resolveTemplate, type PlotProps } from './templates.js';

/** No revision has this plot's files yet (its stage never ran): said in its panel, not an error. */
export class NoPlotData extends UserError {}

export interface PlotImage {
  readonly rev: string;
  readonly path: string;
  readonly bytes: Buffer;
}

/** Everything one plot panel shows: chart rows and their properties (when it has data), images, and what was missing. */
export interface PlotContent {
  readonly props?: PlotProps;
  readonly rows: Row[];
  readonly images: PlotImage[];
  readonly missing: string[];
}

interface Part {
  readonly rev: string;
  readonly file: string;
  /** The file's label: its path inside the plot folder, or its path when a plot names several files. */
  readonly label: string;
  readonly x: string;
  readonly ys: readonly string[];
  readonly rows: Row[];
}

// `step`, `series`, `rev` and `field` are ours (row index, legend, revision, column), not the data's.
const OURS = new Set(['step', 'series', 'rev', 'field']);

/**
 * Read a plot's sources at every revision and lay their rows out as DVC does:
 * one series per revision × file × column; when the columns drawn differ in
 * name (`y: [acc, loss]`, or a folder of DVCLive's per-metric files) their
 * values meet in `dvc_inferred_y_value` (and x in `dvc_inferred_x_value`).
 */
export function plotContent(root: string, d: PlotDecl, revs: readonly PlotRevision[]): PlotContent {
  const template = resolveTemplate(root, d.id, d.props.template);
  const confusion = typeof template === 'string' && isConfusion(template);
  const parts: Part[] = [];
  const images: PlotImage[] = [];
  const missing: string[] = [];
  const many = d.sources.length > 1;
  for (const rev of revs) {
    for (const src of d.sources) {
      const files = rev.files(src.path);
      if ('missing' in files) {
        missing.push(files.missing);
        continue;
      }
      for (const file of files) {
        if (IMAGE_FILE.test(file.path)) {
          images.push({ rev: rev.name, path: file.path, bytes: file.bytes });
          continue;
        }
        const rows = parsePlotFile(file, rev.name, { header: d.props.header !== false });
        const fields = rows.length ? Object.keys(rows[0]!).filter((k) => !OURS.has(k)) : [];
        const x = src.x ?? (confusion ? 'predicted' : 'step');
        const ys = src.y ?? [confusion ? 'actual' : (fields.filter((k) => k !== x).at(-1) ?? 'y')];
        for (const [axis, field] of [['x', x], ...ys.map((y) => ['y', y])] as const) {
          if (field === 'step' && axis === 'x') continue;
          if (rows.length && !rows.some((r) => Object.hasOwn(r, field))) {
            throw new UserError({
              message: `plot '${d.id}': ${axis} field '${field}' is not in the data of ${file.path}`,
              hint: `fields: ${fields.join(', ')}`,
            });
          }
        }
        const inFolder = file.path !== src.path;
        const label = inFolder
          ? file.path.slice(src.path.length + 1).replace(/\.[^./]+$/, '')
          : many
            ? file.path.replace(/\.[^./]+$/, '')
            : path.posix.basename(file.path).replace(/\.[^./]+$/, '');
        parts.push({ rev: rev.name, file: file.path, label, x, ys, rows });
      }
    }
  }
  if (!parts.length && !images.length) {
    throw new NoPlotData({ message: `no data for plot '${d.id}': ${missing.join('; ') || 'no plot files found'}` });
  }
  if (!parts.length) return { rows: [], images, missing };

  const xNames = new Set(parts.map((p) => p.x));
  const yNames = new Set(parts.flatMap((p) => p.ys));
  const xKey = xNames.size === 1 ? [...xNames][0]! : 'dvc_inferred_x_value';
  const yKey = yNames.size === 1 ? [...yNames][0]! : 'dvc_inferred_y_value';
  const severalRevs = new Set(parts.map((p) => p.rev)).size > 1 || revs.length > 1;
  const severalFiles = new Set(parts.map((p) => p.file)).size > 1 || parts.some((p) => d.sources.every((s) => s.path !== p.file));
  const rows: Row[] = [];
  for (const p of parts) {
    for (const y of p.ys) {
      const series = [severalRevs ? p.rev : '', severalFiles ? p.label : '', p.ys.length > 1 ? y : ''].filter(Boolean).join(' · ') || p.rev;
      p.rows.forEach((r, i) => {
        const xv = p.x === 'step' && !Object.hasOwn(r, 'step') ? i : r[p.x];
        rows.push({ step: i, ...r, [xKey]: xv, [yKey]: r[y], field: y, series, rev: p.rev });
      });
    }
  }
  const label = (names: Set<string>, fallback: string) => (names.size === 1 ? [...names][0]! : names.size <= 3 ? [...names].join(', ') : fallback);
  const props: PlotProps = {
    template,
    x: xKey,
    y: yKey,
    title: typeof d.props.title === 'string' ? d.props.title : d.id,
    xLabel: typeof d.props.x_label === 'string' ? d.props.x_label : label(xNames, 'x'),
    yLabel: typeof d.props.y_label === 'string' ? d.props.y_label : label(yNames, 'y'),
  };
  return { props, rows, images, missing };
}
