import fs from 'node:fs';
import type { StageContext } from '../runner/api.js';
import { readJson, toStableJson, writeOutput } from './lib/stage-files.js';
import { LAYOUT } from './lib/layout.js';
import { loadModelFile } from './lib/models/model.js';
import { bestCandidate } from './lib/models/selection.js';
import type { ModelMetrics } from './lib/models/training.js';

/**
 * The candidate with the best test F1 (weighted) among train's models, named in data/metrics/selected.json.
 * A pure function of its deps, with no side effect: registering the selection is `leads`'s job (the registry
 * follows the workspace's outputs), so a restore from the cache is exactly as good as a run.
 */
export default async function (ctx: StageContext): Promise<void> {
  const names = fs
    .readdirSync(ctx.resolve(LAYOUT.modelsDir))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -5))
    .sort();
  const candidates = names.map((name) => {
    loadModelFile(ctx.resolve(LAYOUT.model(name))); // fail here, not in predict, if a file is not a model
    return { ...readJson<ModelMetrics>(ctx.resolve(LAYOUT.metrics(name))), name };
  });
  const winner = bestCandidate(candidates);
  // Only what follows from data and params, so the file is reproducible.
  writeOutput(
    ctx.resolve(LAYOUT.selected),
    toStableJson({
      model: winner.name,
      family: winner.family,
      best_params: winner.best_params,
      train: winner.train,
      test: winner.test,
      test_roc_auc: winner.test_roc_auc,
    }),
  );
  ctx.log(`select: ${winner.name} (test F1 weighted ${winner.test.f1_weighted.toFixed(4)} of ${candidates.length} candidates)`);
}
