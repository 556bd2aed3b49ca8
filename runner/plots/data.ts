import { parse } from 'csv-parse/sync';
import YAML from 'yaml';
import { UserError } from '../errors.js';
import { fileText, type PlotFile } from './sources.js';

export type Row = Record<string, unknown>;

/**
 * Rows of a plot data file: a JSON or YAML list of objects (or an object
 * holding one such list, as DVC accepts), or CSV/TSV. Numbers in CSV are
 * numbers. `header: false` (DVC's option) reads a CSV without a header row;
 * its columns are then named by position, "0", "1", …
 */
export function parsePlotFile(f: PlotFile, rev: string, opts: { header?: boolean } = {}): Row[] {
  const where = `${f.path}${rev === 'workspace' ? '' : ` at ${rev}`}`;
  const text = fileText(f);
  if (/\.(json|ya?ml)$/i.test(f.path)) {
    let v: unknown;
    try {
      v = /\.json$/i.test(f.path) ? JSON.parse(text) : YAML.parse(text);
    } catch (e) {
      const m = /position (\d+)/.exec((e as Error).message);
      const line = m ? text.slice(0, Number(m[1])).split('\n').length : (e as { linePos?: { line: number }[] }).linePos?.[0]?.line;
      throw new UserError({
        message: `cannot parse plot data ${where}: ${(e as Error).message.split('\n')[0]}`,
        location: { file: f.path, ...(line ? { line } : {}) },
      });
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
    const delimiter = /\.tsv$/i.test(f.path) ? '\t' : ',';
    const header = opts.header !== false;
    const raw = parse(text, { columns: header, delimiter, skip_empty_lines: true, trim: true }) as Record<string, string>[] | string[][];
    const rows: Record<string, string>[] = header
      ? (raw as Record<string, string>[])
      : (raw as string[][]).map((cells) => Object.fromEntries(cells.map((c, i) => [String(i), c])));
    return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, x]) => [k, x !== '' && Number.isFinite(Number(x)) ? Number(x) : x])));
  } catch (e) {
    const err = e as Error & { lines?: number };
    throw new UserError({
      message: `cannot parse plot data ${where}: ${err.message.split('\n')[0]}`,
      location: { file: f.path, ...(err.lines ? { line: err.lines } : {}) },
    });
  }
}
