import fs from 'node:fs';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { writeOutput } from '../stage-files.js';

/** A CSV row as read: header name → raw cell text (empty string for an empty cell). */
export type CsvRow = Readonly<Record<string, string>>;

export interface CsvTable {
  readonly columns: readonly string[];
  readonly rows: readonly CsvRow[];
}

export function parseCsv(text: string): CsvTable {
  const records = parse(text, { bom: true, skip_empty_lines: true, relax_column_count: false }) as string[][];
  const [header, ...body] = records;
  if (!header) return { columns: [], rows: [] };
  const dup = header.find((h, i) => header.indexOf(h) !== i);
  if (dup !== undefined) throw new Error(`CSV header repeats the column '${dup}'`);
  const rows = body.map((cells) => Object.fromEntries(header.map((h, i) => [h, cells[i] ?? ''])));
  return { columns: header, rows };
}

export function readCsv(file: string): CsvTable {
  return parseCsv(fs.readFileSync(file, 'utf8'));
}

export type CsvCell = string | number | boolean | null;

/**
 * The one CSV writer of the app (csv-stringify): quotes a cell only when it holds
 * a comma, a quote or a line break. Rows go in as arrays, in `columns` order:
 * given objects, csv-stringify would read a column named `a.b` as a nested path.
 */
export function formatCsv(columns: readonly string[], rows: readonly Readonly<Record<string, CsvCell>>[]): string {
  return stringify([[...columns], ...rows.map((r) => columns.map((c) => r[c] ?? null))], {
    cast: {
      // Shortest round-trip representation: the same number always prints the same way; no NaN or Infinity in a CSV.
      number: (v) => (Number.isFinite(v) ? String(v) : ''),
      // csv-stringify writes true as 1 and false as the empty string by default.
      boolean: (v) => String(v),
    },
  });
}

export function writeCsv(file: string, columns: readonly string[], rows: readonly Readonly<Record<string, CsvCell>>[]): void {
  writeOutput(file, formatCsv(columns, rows));
}
