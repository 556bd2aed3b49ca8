import { UserError, didYouMean } from '../errors.js';
import type { Row } from './data.js';

export const TEMPLATES = ['linear', 'simple', 'scatter', 'smooth', 'bar_horizontal', 'confusion', 'confusion_normalized'] as const;
export type Template = (typeof TEMPLATES)[number];

export interface PlotProps {
  readonly template: Template;
  readonly x: string;
  readonly y: string;
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
}

/** DVC's plot properties, with its defaults: x is the row index (`step`), y the last field. */
export function plotProps(plotPath: string, raw: Readonly<Record<string, unknown>>, sample: readonly Row[]): PlotProps {
  const template = String(raw.template ?? 'linear');
  if (!(TEMPLATES as readonly string[]).includes(template)) {
    const near = didYouMean(template, TEMPLATES);
    throw new UserError({ message: `plot '${plotPath}': unknown template '${template}'${near ? `; ${near}` : ''}`, hint: `templates: ${TEMPLATES.join(', ')}` });
  }
  // `step`, `series` and `rev` are ours (row index, legend, revision), not the data's.
  const fields = sample.length ? Object.keys(sample[0]!).filter((f) => f !== 'step' && f !== 'series' && f !== 'rev') : [];
  const confusion = template.startsWith('confusion');
  const x = typeof raw.x === 'string' ? raw.x : confusion ? 'predicted' : 'step';
  const y = typeof raw.y === 'string' ? raw.y : confusion ? 'actual' : fields.filter((f) => f !== x).at(-1) ?? 'y';
  for (const [axis, field] of [['x', x], ['y', y]] as const) {
    if (field === 'step' && axis === 'x') continue;
    if (sample.length && !sample.some((r) => Object.hasOwn(r, field))) {
      throw new UserError({ message: `plot '${plotPath}': ${axis} field '${field}' is not in the data`, hint: `fields: ${fields.join(', ')}` });
    }
  }
  return {
    template: template as Template,
    x,
    y,
    title: typeof raw.title === 'string' ? raw.title : plotPath,
    xLabel: typeof raw.x_label === 'string' ? raw.x_label : x,
    yLabel: typeof raw.y_label === 'string' ? raw.y_label : y,
  };
}

/** A vega-lite spec for rows that carry a `series` field (revision and/or file). */
export function vegaLiteSpec(p: PlotProps, rows: readonly Row[]): Record<string, unknown> {
  const color = { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom', columns: 2 } };
  const base = { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', title: p.title, data: { values: rows }, config: { font: 'sans-serif' } };
  const xq = { field: p.x, type: 'quantitative', title: p.xLabel };
  const yq = { field: p.y, type: 'quantitative', title: p.yLabel };
  switch (p.template) {
    case 'linear':
    case 'simple':
      return { ...base, width: 420, height: 300, mark: { type: 'line', point: p.template === 'linear', interpolate: 'linear' }, encoding: { x: xq, y: yq, color } };
    case 'scatter':
      return { ...base, width: 420, height: 300, mark: { type: 'point', filled: true }, encoding: { x: xq, y: yq, color } };
    case 'smooth':
      return { ...base, width: 420, height: 300, transform: [{ loess: p.y, on: p.x, groupby: ['series'], bandwidth: 0.3 }], mark: 'line', encoding: { x: xq, y: yq, color } };
    case 'bar_horizontal':
      return { ...base, width: 420, mark: 'bar', encoding: { y: { field: p.x, type: 'nominal', title: p.xLabel }, x: yq, color, yOffset: { field: 'series' } } };
    case 'confusion':
    case 'confusion_normalized': {
      const normalized = p.template === 'confusion_normalized';
      const transform: Record<string, unknown>[] = [{ aggregate: [{ op: 'count', as: 'count' }], groupby: ['series', p.x, p.y] }];
      if (normalized) {
        transform.push({ joinaggregate: [{ op: 'sum', field: 'count', as: 'row_total' }], groupby: ['series', p.y] }, { calculate: 'datum.count / datum.row_total', as: 'share' });
      }
      const value = normalized ? 'share' : 'count';
      const cell = {
        x: { field: p.x, type: 'nominal', title: p.xLabel },
        y: { field: p.y, type: 'nominal', title: p.yLabel },
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
