import { binSource, clip, scale, type CleaningArtifacts } from '../data/clean.js';
import { featureVector, UnknownCategoryError, type EncodableRow, type FeatureSchema } from '../data/features.js';
import { predictProba, toLabels, type ModelFile } from '../models/model.js';
import { CONTINUOUS_COLUMNS, RAW_COLUMNS, type ContinuousColumn } from '../data/schema.js';
import type { Label } from '../data/features.js';

/**
 * Batch prediction, one code path for the CLI and a future HTTP service:
 * rows in (CSV cells or JSON values), predictions or per-row errors out.
 */

export type PredictMode = 'raw' | 'features';

/** Everything a registry version stores to turn input rows into a prediction. */
export interface ModelBundle {
  readonly model: ModelFile;
  readonly cleaning: CleaningArtifacts;
  readonly features: FeatureSchema;
}

export type InputRow = Readonly<Record<string, unknown>>;

export interface RowError {
  /** 1-based position of the row in the input (the CSV line after the header). */
  readonly row: number;
  readonly message: string;
}

export interface Prediction {
  readonly prediction: Label;
  readonly probability: number;
}

export type PredictOutcome = { readonly ok: true; readonly predictions: readonly Prediction[] } | { readonly ok: false; readonly errors: readonly RowError[] };

/** The raw columns a prediction needs; the rest of raw_data.csv's columns are accepted and ignored. */
export const RAW_REQUIRED = ['purchases', 'time_spent', 'n_visits', 'customer_group', 'onboarding', 'source'] as const;

function cellText(v: unknown): string | undefined {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v.trim();
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : undefined;
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return undefined;
}

function columnProblems(row: InputRow, allowed: readonly string[], required: readonly string[]): string[] {
  const keys = Object.keys(row);
  const problems: string[] = [];
  const unknown = keys.filter((k) => !allowed.includes(k));
  const missing = required.filter((k) => !keys.includes(k));
  if (unknown.length) problems.push(`unknown column${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`);
  if (missing.length) problems.push(`missing column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  return problems;
}

/** Replay clean's steps 5–8 with the saved artifacts (clip, impute, scale, bin), then one-hot. */
export function rawRowToFeatures(row: InputRow, b: ModelBundle): { features: number[] } | { problems: string[] } {
  const problems = columnProblems(row, RAW_COLUMNS, RAW_REQUIRED);
  if (problems.length) return { problems };
  const cont = {} as Record<ContinuousColumn, number>;
  for (const c of CONTINUOUS_COLUMNS) {
    const t = cellText(row[c]);
    const v = t === undefined || t === '' ? NaN : Number(t);
    if (t === undefined || (t !== '' && !Number.isFinite(v))) {
      problems.push(`${c} must be a number, got ${JSON.stringify(row[c])}`);
      continue;
    }
    // The order matters and mirrors clean: clip, then impute a gap with the clipped mean, then scale.
    const clipped = Number.isNaN(v) ? b.cleaning.imputation.continuous[c] : clip(v, b.cleaning.clip_bounds[c]);
    cont[c] = scale(clipped, b.cleaning.scaler[c]);
  }
  const cat = (c: 'customer_group' | 'onboarding' | 'source'): string | undefined => {
    const t = cellText(row[c]);
    if (t === undefined) problems.push(`${c} must be text, got ${JSON.stringify(row[c])}`);
    return t === '' ? b.cleaning.imputation.categorical[c] : t;
  };
  const group = cat('customer_group');
  const onboarding = cat('onboarding');
  const source = cat('source');
  let bin: string | undefined;
  if (source !== undefined) {
    try {
      bin = binSource(source);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  // Clean keeps signups only, so other sources have no encoding; say so rather than name the derived bin_source.
  const known = b.features.oneHot.find((e) => e.column === 'source')?.categories ?? [];
  if (source !== undefined && bin !== undefined && !known.includes(source)) {
    problems.push(`source '${source}' cannot be scored: the model was trained on ${known.join(', ')} rows only`);
  }
  if (problems.length || group === undefined || onboarding === undefined || source === undefined || bin === undefined) return { problems };
  const encodable: EncodableRow = { ...cont, customer_group: group, onboarding, source, bin_source: bin };
  try {
    return { features: featureVector(encodable, b.features) };
  } catch (e) {
    if (e instanceof UnknownCategoryError) return { problems: [e.message] };
    throw e;
  }
}

/** Rows already in model-feature form (the validator's files): exactly the model's columns, all numbers. */
export function featureRowToVector(row: InputRow, b: ModelBundle): { features: number[] } | { problems: string[] } {
  const columns = b.features.columns;
  const problems = columnProblems(row, columns, columns);
  if (problems.length) return { problems };
  const features: number[] = [];
  for (const c of columns) {
    const t = cellText(row[c]);
    const v = t === undefined || t === '' ? NaN : Number(t);
    if (!Number.isFinite(v)) problems.push(`${c} must be a number, got ${JSON.stringify(row[c])}`);
    features.push(v);
  }
  return problems.length ? { problems } : { features };
}

/** Every row that can be predicted is; the others are reported (row, reason) with no prediction. */
export async function predictValidRows(
  rows: readonly InputRow[],
  opts: { mode: PredictMode; bundle: ModelBundle },
): Promise<{ readonly predictions: readonly (Prediction | undefined)[]; readonly errors: readonly RowError[] }> {
  const { bundle } = opts;
  if (bundle.model.features.join(',') !== bundle.features.columns.join(',')) {
    throw new Error('the model and its feature schema disagree on the columns; the registry version is inconsistent');
  }
  const toVector = opts.mode === 'raw' ? rawRowToFeatures : featureRowToVector;
  const X: number[][] = [];
  const at: number[] = [];
  const errors: RowError[] = [];
  rows.forEach((row, i) => {
    const r = toVector(row, bundle);
    if ('problems' in r) errors.push({ row: i + 1, message: r.problems.join('; ') });
    else {
      X.push(r.features);
      at.push(i);
    }
  });
  const predictions: (Prediction | undefined)[] = new Array(rows.length).fill(undefined);
  if (X.length) {
    const proba = await predictProba(bundle.model.model, X);
    const labels = toLabels(proba);
    proba.forEach((probability, k) => (predictions[at[k]!] = { prediction: labels[k]!, probability }));
  }
  return { predictions, errors };
}

/** All rows or nothing: a batch with any bad row is refused whole, naming every bad row. */
export async function predictRows(rows: readonly InputRow[], opts: { mode: PredictMode; bundle: ModelBundle }): Promise<PredictOutcome> {
  const { predictions, errors } = await predictValidRows(rows, opts);
  if (errors.length) return { ok: false, errors };
  return { ok: true, predictions: predictions as Prediction[] };
}
