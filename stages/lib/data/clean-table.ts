import type { CsvCell, CsvRow } from './csv.js';
import type { CleanRow } from './clean.js';
import { binSource } from './clean.js';
import { CLEAN_COLUMNS } from './schema.js';

/** The cleaned table as CSV cells, in CLEAN_COLUMNS order. */
export function cleanRowToCells(r: CleanRow): Record<string, CsvCell> {
  return { ...r };
}

/** Read back a row written by clean; anything malformed means the file is not clean's output. */
export function cleanRowFromCsv(row: CsvRow, index: number): CleanRow {
  const where = `clean table row ${index + 1}`;
  for (const c of CLEAN_COLUMNS) if (row[c] === undefined) throw new Error(`${where}: column ${c} is missing`);
  const num = (c: 'purchases' | 'time_spent' | 'n_visits'): number => {
    const v = Number(row[c]);
    if (row[c] === '' || !Number.isFinite(v)) throw new Error(`${where}: ${c} is not a number: '${row[c]}'`);
    return v;
  };
  const label = row.lead_indicator;
  if (label !== '0' && label !== '1') throw new Error(`${where}: lead_indicator must be 0 or 1, got '${label}'`);
  const source = row.source!;
  const bin = binSource(source);
  if (row.bin_source !== bin) throw new Error(`${where}: bin_source '${row.bin_source}' does not match source '${source}'`);
  return {
    lead_id: row.lead_id!,
    lead_indicator: label === '1' ? 1 : 0,
    date_part: row.date_part!,
    source,
    customer_group: row.customer_group!,
    onboarding: row.onboarding!,
    customer_code: row.customer_code!,
    purchases: num('purchases'),
    time_spent: num('time_spent'),
    n_visits: num('n_visits'),
    bin_source: bin,
  };
}
