import type { CsvCell } from './csv.js';
import { readCsv, writeCsv } from './csv.js';
import type { Dataset, Label } from './features.js';
import { TARGET_COLUMN } from './schema.js';

/** Write features then the target, one row per sample. */
export function writeDataset(file: string, data: Dataset): void {
  const columns = [...data.columns, TARGET_COLUMN];
  const rows = data.X.map((x, i) => {
    const r: Record<string, CsvCell> = {};
    data.columns.forEach((c, j) => (r[c] = x[j]!));
    r[TARGET_COLUMN] = data.y[i]!;
    return r;
  });
  writeCsv(file, columns, rows);
}

export function readDataset(file: string): Dataset {
  const table = readCsv(file);
  if (!table.columns.includes(TARGET_COLUMN)) throw new Error(`${file}: no ${TARGET_COLUMN} column`);
  const columns = table.columns.filter((c) => c !== TARGET_COLUMN);
  const X = table.rows.map((r, i) =>
    columns.map((c) => {
      const v = Number(r[c]);
      if (r[c] === '' || !Number.isFinite(v)) throw new Error(`${file} row ${i + 1}: ${c} is not a number: '${r[c]}'`);
      return v;
    }),
  );
  const y = table.rows.map((r, i): Label => {
    const v = Number(r[TARGET_COLUMN]);
    if (v !== 0 && v !== 1) throw new Error(`${file} row ${i + 1}: ${TARGET_COLUMN} must be 0 or 1, got '${r[TARGET_COLUMN]}'`);
    return v;
  });
  return { columns, X, y };
}
