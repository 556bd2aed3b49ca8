import fs from 'node:fs';
import path from 'node:path';
import { UserError, didYouMean } from '../errors.js';
import type { Row } from './data.js';

/** The templates DVC ships (dvc-render), drawn by our own vega-lite specs. */
const TEMPLATES = [
  'linear',
  'simple',
  'scatter',
  'scatter_jitter',
  'smooth',
  'bar_horizontal',
  'bar_horizontal_sorted',
  'confusion',
  'confusion_normalized',
] as const;
type Template = (typeof TEMPLATES)[number];

export interface PlotProps {
  /** A built-in template, or a custom template's vega-lite text (with DVC's `<DVC_METRIC_…>` placeholders). */
  readonly template: Template | { readonly custom: string; readonly file: string };
  /** Fields of the rows to draw (possibly DVC's `dvc_inferred_x_value` / `dvc_inferred_y_value`). */
  readonly x: string;
  readonly y: string;
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
}

export const isConfusion = (t: string): boolean => t.startsWith('confusion');

/**
 * A template name: one DVC ships, or a custom vega-lite file, named by its
 * path or, as in a DVC repository, by its name under `.dvc/plots/`.
 */
export function resolveTemplate(root: string, plotId: string, raw: unknown): PlotProps['template'] {
  const name = String(raw ?? 'linear');
  if ((TEMPLATES as readonly string[]).includes(name)) return name as Template;
  for (const cand of [name, `.dvc/plots/${name}.json`, `.dvc/plots/${name}`]) {
    const abs = path.resolve(root, cand);
    if (fs.existsSync(abs) && fs.statSync(abs).isFile()) return { custom: fs.readFileSync(abs, 'utf8'), file: cand };
  }
  const near = didYouMean(name, TEMPLATES);
  throw new UserError({
    message: `plot '${plotId}': unknown template '${name}'${near ? `; ${near}` : ''}`,
    hint: `templates: ${TEMPLATES.join(', ')}, or the path of a vega-lite template file`,
  });
}

/** vega-lite reads `a.b` as a nested field; DVC's flattened names are plain ones. */
const f = (field: string) => field.replace(/[.[\]]/g, (c) => `\\${c}`);

/** A vega-lite spec for rows that carry a `series` field (revision, file and/or column). */
export function vegaLiteSpec(p: PlotProps, rows: readonly Row[]): Record<string, unknown> {
  if (typeof p.template === 'object') return customSpec(p, p.template, rows);
  const color = { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom', columns: 2 } };
  const base = { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', title: p.title, data: { values: rows }, config: { font: 'sans-serif' } };
  const xq = { field: f(p.x), type: 'quantitative', title: p.xLabel };
  const yq = { field: f(p.y), type: 'quantitative', title: p.yLabel };
  switch (p.template) {
    case 'linear':
    case 'simple':
      return {
        ...base,
        width: 420,
        height: 300,
        mark: { type: 'line', point: p.template === 'linear', interpolate: 'linear' },
        encoding: { x: xq, y: yq, color },
      };
    case 'scatter':
      return { ...base, width: 420, height: 300, mark: { type: 'point', filled: true }, encoding: { x: xq, y: yq, color } };
    case 'scatter_jitter':
      // Class labels against class labels: points spread inside each cell so their number shows. The jitter
      // comes from the row index, not random(), so the same data always draws the same picture.
      return {
        ...base,
        width: 420,
        height: 300,
        transform: [
          { calculate: 'abs((sin(datum.step * 12.9898 + 1) * 43758.5453) % 1) - 0.5', as: 'dvc_jitter_x' },
          { calculate: 'abs((sin(datum.step * 78.233 + 2) * 12345.6789) % 1) - 0.5', as: 'dvc_jitter_y' },
        ],
        mark: { type: 'point', filled: true, opacity: 0.6 },
        encoding: {
          x: { field: f(p.x), type: 'nominal', title: p.xLabel },
          y: { field: f(p.y), type: 'nominal', title: p.yLabel },
          xOffset: { field: 'dvc_jitter_x', type: 'quantitative', scale: { domain: [-0.5, 0.5] } },
          yOffset: { field: 'dvc_jitter_y', type: 'quantitative', scale: { domain: [-0.5, 0.5] } },
          color,
        },
      };
    case 'smooth':
      return {
        ...base,
        width: 420,
        height: 300,
        transform: [{ loess: f(p.y), on: f(p.x), groupby: ['series'], bandwidth: 0.3 }],
        mark: 'line',
        encoding: { x: xq, y: yq, color },
      };
    case 'bar_horizontal':
    case 'bar_horizontal_sorted':
      return {
        ...base,
        width: 420,
        mark: 'bar',
        encoding: {
          y: { field: f(p.x), type: 'nominal', title: p.xLabel, ...(p.template === 'bar_horizontal_sorted' ? { sort: '-x' } : {}) },
          x: yq,
          color,
          yOffset: { field: 'series' },
        },
      };
    case 'confusion':
    case 'confusion_normalized': {
      const normalized = p.template === 'confusion_normalized';
      const transform: Record<string, unknown>[] = [{ aggregate: [{ op: 'count', as: 'count' }], groupby: ['series', f(p.x), f(p.y)] }];
      if (normalized) {
        transform.push(
          { joinaggregate: [{ op: 'sum', field: 'count', as: 'row_total' }], groupby: ['series', f(p.y)] },
          { calculate: 'datum.count / datum.row_total', as: 'share' },
        );
      }
      const value = normalized ? 'share' : 'count';
      const cell = {
        x: { field: f(p.x), type: 'nominal', title: p.xLabel },
        y: { field: f(p.y), type: 'nominal', title: p.yLabel },
      };
      return {
        ...base,
        transform,
        facet: { column: { field: 'series', type: 'nominal', title: null } },
        spec: {
          width: 160,
          height: 160,
          layer: [
            { mark: 'rect', encoding: { ...cell, color: { field: value, type: 'quantitative', title: value, scale: { scheme: 'blues' } } } },
            { mark: { type: 'text', fontSize: 14 }, encoding: { ...cell, text: { field: value, type: 'quantitative', format: normalized ? '.2f' : 'd' } } },
          ],
        },
      };
    }
  }
}

/**
 * DVC's custom templates: a vega-lite document in which `"<DVC_METRIC_DATA>"`
 * stands for the data and `<DVC_METRIC_X>` and friends for the plot's
 * properties. A placeholder we do not know is named, never left in.
 */
function customSpec(p: PlotProps, t: { custom: string; file: string }, rows: readonly Row[]): Record<string, unknown> {
  const str = (s: string) => JSON.stringify(s).slice(1, -1);
  const values: Record<string, string> = {
    '"<DVC_METRIC_DATA>"': JSON.stringify(rows),
    '"<DVC_METRIC_COLOR>"': JSON.stringify({ field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom' } }),
    '"<DVC_METRIC_PLOT_WIDTH>"': '420',
    '"<DVC_METRIC_PLOT_HEIGHT>"': '300',
    '"<DVC_METRIC_ZOOM_AND_PAN>"': JSON.stringify({ name: 'grid', select: 'interval', bind: 'scales' }),
    '<DVC_METRIC_X>': str(f(p.x)),
    '<DVC_METRIC_Y>': str(f(p.y)),
    '<DVC_METRIC_TITLE>': str(p.title),
    '<DVC_METRIC_X_LABEL>': str(p.xLabel),
    '<DVC_METRIC_Y_LABEL>': str(p.yLabel),
  };
  if (!t.custom.includes('<DVC_METRIC_DATA>')) {
    throw new UserError({ message: `template ${t.file} has no "<DVC_METRIC_DATA>" placeholder, so no data can go in it`, location: { file: t.file } });
  }
  let text = t.custom;
  for (const [k, v] of Object.entries(values)) text = text.split(k).join(v);
  const left = /<DVC_METRIC_[A-Z_]+>/.exec(text);
  if (left)
    throw new UserError({
      message: `template ${t.file} uses ${left[0]}, which Lockstep does not fill in`,
      location: { file: t.file },
      hint: `supported: ${Object.keys(values)
        .map((k) => k.replace(/"/g, ''))
        .join(', ')}`,
    });
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new UserError({ message: `template ${t.file} is not valid JSON: ${(e as Error).message.split('\n')[0]}`, location: { file: t.file } });
  }
}
