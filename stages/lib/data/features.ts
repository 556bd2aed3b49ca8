import { compareCategories } from './clean.js';
import { CONTINUOUS_COLUMNS, FEATURE_COLUMNS, ONE_HOT_COLUMNS, type ContinuousColumn, type OneHotColumn } from './schema.js';

export type Label = 0 | 1;

/** The categorical values the one-hot step needs, whatever the row came from. */
export type EncodableRow = Readonly<Record<ContinuousColumn, number> & Record<OneHotColumn, string>>;

interface OneHotEncoding {
  readonly column: OneHotColumn;
  /** Every category seen when fitting, sorted; the first is the dropped baseline. */
  readonly categories: readonly string[];
}

/** How cleaned rows become model features; fitted once, saved, and replayed at prediction time. */
export interface FeatureSchema {
  readonly columns: readonly string[];
  readonly oneHot: readonly OneHotEncoding[];
}

/** A feature matrix with labels; rows of X follow FeatureSchema.columns. */
export interface Dataset {
  readonly columns: readonly string[];
  readonly X: readonly (readonly number[])[];
  readonly y: readonly Label[];
}

function oneHotName(column: string, category: string): string {
  return `${column}_${category}`;
}

/**
 * pandas.get_dummies(drop_first=True): per column the sorted categories, the
 * first one dropped; a single-category column therefore yields no feature.
 */
export function fitFeatureSchema(rows: readonly EncodableRow[]): FeatureSchema {
  const oneHot = ONE_HOT_COLUMNS.map((column) => ({
    column,
    categories: [...new Set(rows.map((r) => r[column]))].sort(compareCategories),
  }));
  const columns = [
    ...CONTINUOUS_COLUMNS,
    ...oneHot.flatMap((e) => e.categories.slice(1).map((c) => oneHotName(e.column, c))),
  ];
  return { columns, oneHot };
}

export class UnknownCategoryError extends Error {
  constructor(readonly column: string, readonly value: string, readonly known: readonly string[]) {
    super(`${column} '${value}' was not seen in training (known: ${known.join(', ')})`);
  }
}

export function featureVector(row: EncodableRow, schema: FeatureSchema): number[] {
  const out: number[] = CONTINUOUS_COLUMNS.map((c) => row[c]);
  for (const e of schema.oneHot) {
    const value = row[e.column];
    if (!e.categories.includes(value)) throw new UnknownCategoryError(e.column, value, e.categories);
    for (const c of e.categories.slice(1)) out.push(value === c ? 1 : 0);
  }
  return out;
}

/** The pipeline's contract with the validator: exactly the spec's 12 columns, in order. */
export function assertSpecFeatures(schema: FeatureSchema): void {
  const got = schema.columns.join(', ');
  if (got !== FEATURE_COLUMNS.join(', ')) {
    throw new Error(`the features are not the spec's 12 columns:\n  expected ${FEATURE_COLUMNS.join(', ')}\n  got      ${got}`);
  }
}
