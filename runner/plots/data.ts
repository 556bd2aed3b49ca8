import { parse } from 'csv-parse/sync';
import { UserError } from '../errors.js';
import type { PlotFile } from './sources.js';

export type Row = Record<string, unknown>;

/**
 * Rows of a plot data file: a JSON array of objects (or an object holding
 * one such array, as DVC accepts), or CSV/TSV with a header. Numbers in
 * CSV are numbers.
 */
export function parsePlotFile(f: PlotFile, rev: string): Row[] {
  const where = `${f.path}${rev === 'workspace' ? '' : ` at ${rev}`}`;
  if (/\.json$/i.test(f.path)) {
    let v: unknown;
    try {
      v = JSON.parse(f.text);
    } catch (e) {
      const m = /position (\d+)/.exec((e as Error).message);
      const line = m ? f.text.slice(0, Number(m[1])).split('\n').length : undefined;
      throw new UserError({ message: `cannot parse plot data ${where}: ${(e as Error).message.split('\n')[0]}`, location: { file: f.path, ...(line ? { line } : {}) } });
    }
    if (!Array.isArray(v) && v && typeof v === 'object') {
      const arrays = Object.values(v).filter(Array.isArray);
      if (arrays.length === 1) v = arrays[0];
    }
    if (!Array.isArray(v) || !v.every((r) => r && typeof r === 'object' && !Array.isArray(r))) {
      throw new UserError({ message: `plot data ${where} must be a list of records (objects with the same fields)`, location: { file: f.path } });
    }
    return v as Row[];
  }
  try {
    const rows = parse(f.text, { columns: true, delimiter: /\.tsv$/i.test(f.path) ? '\t' : ',', skip_empty_lines: true, trim: true }) as Record<string, string>[];
    return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, x]) => [k, x !== '' && Number.isFinite(Number(x)) ? Number(x) : x])));
  } catch (e) {
    const err = e as Error & { lines?: number };
    throw new UserError({ message: `cannot parse plot data ${where}: ${err.message.split('\n')[0]}`, location: { file: f.path, ...(err.lines ? { line: err.lines } : {}) } });
  }
}
