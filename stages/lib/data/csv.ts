import fs from 'node:fs';
import { parse } from 'csv-parse/sync';
import { writeFileAtomic } from '../atomic-write.js';

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

function formatCell(v: CsvCell): string {
  if (v === null) return '';
  // Shortest round-trip representation: the same number always prints the same way.
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function formatCsv(columns: readonly string[], rows: readonly Readonly<Record<string, CsvCell>>[]): string {
  const lines = [columns.map(formatCell).join(',')];
  for (const r of rows) lines.push(columns.map((c) => formatCell(r[c] ?? null)).join(','));
  return lines.join('\n') + '\n';
}

export function writeCsv(file: string, columns: readonly string[], rows: readonly Readonly<Record<string, CsvCell>>[]): void {
  writeFileAtomic(file, formatCsv(columns, rows));
}
