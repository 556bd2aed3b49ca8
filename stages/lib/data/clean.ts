import type { CsvCell, CsvRow } from './csv.js';
import { parseLooseDate } from '../params.js';
import {
  CATEGORICAL_COLUMNS, CLEAN_COLUMNS, CONTINUOUS_COLUMNS, SOURCE_BINS,
  type BinSource, type CategoricalColumn, type ContinuousColumn,
} from './schema.js';

export interface CleanParams {
  /** Inclusive, YYYY-MM-DD. */
  readonly minDate: string;
  readonly maxDate: string;
}

/** A cleaned row: continuous values clipped, imputed and scaled; categoricals imputed. */
export interface CleanRow {
  readonly lead_id: string;
  readonly lead_indicator: 0 | 1;
  readonly date_part: string;
  readonly source: string;
  readonly customer_group: string;
  readonly onboarding: string;
  readonly customer_code: string;
  readonly purchases: number;
  readonly time_spent: number;
  readonly n_visits: number;
  readonly bin_source: BinSource;
}

export interface ClipBound { readonly mean: number; readonly std: number; readonly lower: number; readonly upper: number }
interface ColumnSummary { readonly count: number; readonly missing: number; readonly mean: number; readonly min: number; readonly max: number }
export interface ScalerRange { readonly min: number; readonly max: number }

/** Everything clean learned from the data; batch prediction replays it on new raw rows. */
export interface CleaningArtifacts {
  readonly date_limits: { readonly min_date: string; readonly max_date: string };
  readonly clip_bounds: Readonly<Record<ContinuousColumn, ClipBound>>;
  readonly outlier_summary: Readonly<Record<ContinuousColumn, ColumnSummary>>;
  readonly imputation: {
    readonly continuous: Readonly<Record<ContinuousColumn, number>>;
    readonly categorical: Readonly<Record<CategoricalColumn, string>>;
  };
  readonly scaler: Readonly<Record<ContinuousColumn, ScalerRange>>;
  readonly columns: readonly string[];
}

export interface CleanResult {
  readonly rows: readonly CleanRow[];
  readonly artifacts: CleaningArtifacts;
}

/** A row between steps: continuous cells may be missing (NaN) until imputation. */
interface WorkingRow {
  lead_id: string;
  lead_indicator: string;
  date_part: string;
  source: string;
  customer_group: string;
  onboarding: string;
  customer_code: string;
  purchases: number;
  time_spent: number;
  n_visits: number;
}

class CleanError extends Error {}

/** Parse a continuous cell: empty → NaN (missing), anything non-numeric → error. */
function parseContinuous(text: string | undefined, column: string, where: string): number {
  const t = (text ?? '').trim();
  if (t === '') return NaN;
  const v = Number(t);
  if (!Number.isFinite(v)) throw new CleanError(`${where}: ${column} must be a number, got '${text}'`);
  return v;
}

function mean(values: readonly number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/** Sample standard deviation (n − 1), as pandas' Series.std. */
function sampleStd(values: readonly number[]): number {
  const m = mean(values);
  let s = 0;
  for (const v of values) s += (v - m) * (v - m);
  return Math.sqrt(s / (values.length - 1));
}

/**
 * The most frequent value; ties go to the smallest in sort order, as pandas'
 * Series.mode()[0] (which returns the modes sorted).
 */
export function modeOf(values: readonly string[]): string | undefined {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: string | undefined;
  let bestCount = 0;
  for (const [v, c] of [...counts].sort((a, b) => compareCategories(a[0], b[0]))) {
    if (c > bestCount) [best, bestCount] = [v, c];
  }
  return best;
}

/** Numbers numerically, otherwise by code unit: how pandas sorts ints and strings. */
export function compareCategories(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (a.trim() !== '' && b.trim() !== '' && Number.isFinite(na) && Number.isFinite(nb) && na !== nb) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Clip step 5: mean ± 2·std over the present values; missing stays missing. */
export function clipBound(values: readonly number[]): ClipBound {
  const present = values.filter((v) => !Number.isNaN(v));
  if (present.length < 2) throw new CleanError(`cannot compute outlier bounds from ${present.length} value(s)`);
  const m = mean(present);
  const std = sampleStd(present);
  return { mean: m, std, lower: m - 2 * std, upper: m + 2 * std };
}

export function clip(v: number, b: { lower: number; upper: number }): number {
  return Number.isNaN(v) ? v : Math.min(b.upper, Math.max(b.lower, v));
}

/** Min-max scaling to [0, 1]; a constant column maps to 0 (sklearn's convention). */
export function scale(v: number, r: ScalerRange): number {
  const span = r.max - r.min;
  return span === 0 ? 0 : (v - r.min) / span;
}

function summarize(values: readonly number[]): ColumnSummary {
  const present = values.filter((v) => !Number.isNaN(v));
  return {
    count: present.length,
    missing: values.length - present.length,
    mean: mean(present),
    min: Math.min(...present),
    max: Math.max(...present),
  };
}

function perContinuous<T>(f: (c: ContinuousColumn) => T): Record<ContinuousColumn, T> {
  return Object.fromEntries(CONTINUOUS_COLUMNS.map((c) => [c, f(c)])) as Record<ContinuousColumn, T>;
}

/** Spec steps 1–9, in the notebook's order; every statistic is over the rows kept so far. */
export function cleanRows(raw: readonly CsvRow[], params: CleanParams): CleanResult {
  // 1. date window. Dates are written unpadded (2024-01-1), so compare parsed ISO forms.
  const dated: { row: CsvRow; date: string }[] = [];
  raw.forEach((row, i) => {
    const date = parseLooseDate(row.date_part ?? '');
    if (date === undefined) throw new CleanError(`row ${i + 1}: date_part is not a date: '${row.date_part ?? ''}'`);
    if (date >= params.minDate && date <= params.maxDate) dated.push({ row, date });
  });
  if (dated.length === 0) throw new CleanError(`no rows between ${params.minDate} and ${params.maxDate}`);
  const dates = dated.map((d) => d.date).sort();
  const date_limits = { min_date: dates[0]!, max_date: dates[dates.length - 1]! };

  // 2–3. The dropped columns are simply never copied. Drop unlabeled rows and keep signups only.
  const working: WorkingRow[] = [];
  for (const { row, date } of dated) {
    const indicator = (row.lead_indicator ?? '').trim();
    const id = (row.lead_id ?? '').trim();
    if (indicator === '' || id === '' || row.source !== 'signup') continue;
    const where = `row with lead_id ${id}`;
    const label = Number(indicator);
    if (label !== 0 && label !== 1) throw new CleanError(`${where}: lead_indicator must be 0 or 1, got '${indicator}'`);
    working.push({
      lead_id: id,
      lead_indicator: String(label),
      date_part: date,
      source: row.source,
      customer_group: (row.customer_group ?? '').trim(),
      onboarding: (row.onboarding ?? '').trim(),
      customer_code: (row.customer_code ?? '').trim(),
      purchases: parseContinuous(row.purchases, 'purchases', where),
      time_spent: parseContinuous(row.time_spent, 'time_spent', where),
      n_visits: parseContinuous(row.n_visits, 'n_visits', where),
    });
  }
  if (working.length < 2) throw new CleanError(`only ${working.length} labeled signup row(s) in the date window; cannot clean`);

  // 5. clip outliers, then summarize the clipped columns.
  const clip_bounds = perContinuous((c) => clipBound(working.map((r) => r[c])));
  for (const r of working) for (const c of CONTINUOUS_COLUMNS) r[c] = clip(r[c], clip_bounds[c]);
  const outlier_summary = perContinuous((c) => summarize(working.map((r) => r[c])));

  // 6. impute. customer_code's gap means "no code" and becomes the string None before the modes are taken.
  const continuousImpute = perContinuous((c) => outlier_summary[c].mean);
  for (const r of working) {
    for (const c of CONTINUOUS_COLUMNS) if (Number.isNaN(r[c])) r[c] = continuousImpute[c];
    if (r.customer_code === '') r.customer_code = 'None';
  }
  const categoricalImpute = Object.fromEntries(
    CATEGORICAL_COLUMNS.map((c) => [c, modeOf(working.map((r) => r[c]).filter((v) => v !== '')) ?? 'None']),
  ) as Record<CategoricalColumn, string>;
  for (const r of working) for (const c of CATEGORICAL_COLUMNS) if (r[c] === '') r[c] = categoricalImpute[c];

  // 7. quirk kept from the notebook: the scaler sees every cleaned row, test rows included.
  const scaler = perContinuous((c) => {
    const vs = working.map((r) => r[c]);
    return { min: Math.min(...vs), max: Math.max(...vs) };
  });

  // 8–9.
  const rows: CleanRow[] = working.map((r) => ({
    ...r,
    lead_indicator: r.lead_indicator === '1' ? 1 : 0,
    purchases: scale(r.purchases, scaler.purchases),
    time_spent: scale(r.time_spent, scaler.time_spent),
    n_visits: scale(r.n_visits, scaler.n_visits),
    bin_source: binSource(r.source),
  }));
  return {
    rows,
    artifacts: {
      date_limits,
      clip_bounds,
      outlier_summary,
      imputation: { continuous: continuousImpute, categorical: categoricalImpute },
      scaler,
      columns: [...CLEAN_COLUMNS],
    },
  };
}

export function binSource(source: string): BinSource {
  const bin = SOURCE_BINS[source];
  if (bin === undefined) throw new CleanError(`source '${source}' is not one of ${Object.keys(SOURCE_BINS).join(', ')}`);
  return bin;
}

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
