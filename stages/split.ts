import type { StageContext } from '../runner/api.js';
import { toStableJson, writeOutput } from './lib/stage-files.js';
import { cleanRowFromCsv } from './lib/data/clean.js';
import { readCsv } from './lib/data/csv.js';
import { writeDataset } from './lib/data/dataset.js';
import { assertSpecFeatures, featureVector, fitFeatureSchema, type Dataset } from './lib/data/features.js';
import { LAYOUT } from './lib/layout.js';
import { ParamReader } from './lib/params.js';
import { stratifiedSplit, take } from './lib/data/split.js';

/** One-hot features (the spec's 12 columns) and a seeded stratified train/test split. */
export default async function (ctx: StageContext): Promise<void> {
  const p = ParamReader.of(ctx.params, 'split');
  const rows = readCsv(ctx.resolve(LAYOUT.cleanTable)).rows.map(cleanRowFromCsv);
  const schema = fitFeatureSchema(rows);
  assertSpecFeatures(schema);
  const X = rows.map((r) => featureVector(r, schema));
  const y = rows.map((r) => r.lead_indicator);
  const idx = stratifiedSplit(y, p.get('test_size').fraction(), p.get('seed').int(0));
  const part = (i: readonly number[]): Dataset => ({ columns: schema.columns, X: take(X, i), y: take(y, i) });
  writeDataset(ctx.resolve(LAYOUT.trainSet), part(idx.train));
  writeDataset(ctx.resolve(LAYOUT.testSet), part(idx.test));
  writeOutput(ctx.resolve(LAYOUT.featureSchema), toStableJson(schema));
  ctx.log(`split: ${idx.train.length} train rows, ${idx.test.length} test rows, ${schema.columns.length} features`);
}
