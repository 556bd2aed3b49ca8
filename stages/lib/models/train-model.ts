import type { Dataset } from '../data/features.js';
import { confusionRows, prCurve, rocAuc, rocCurve, type ClassificationMetrics, type PrPoint, type RocPoint } from './metrics.js';
import type { ModelFile } from './model.js';
import { evaluate, randomizedSearch, type CandidateScore, type ModelSpec, type SearchConfig } from './training.js';

/** What train writes per model: deterministic for the same data and params (no times, no paths). */
export interface ModelMetrics {
  readonly model: string;
  readonly family: string;
  readonly search: { readonly scoring: string; readonly cv: number; readonly n_iter: number; readonly best_score: number; readonly candidates: readonly CandidateScore[] };
  readonly best_params: Readonly<Record<string, number | string>>;
  readonly train: ClassificationMetrics;
  readonly test: ClassificationMetrics;
  readonly test_roc_auc: number;
}

export interface TrainedModel {
  readonly file: ModelFile;
  readonly metrics: ModelMetrics;
  readonly plots: {
    readonly roc: readonly RocPoint[];
    readonly pr: readonly PrPoint[];
    readonly confusion: readonly { actual: 0 | 1; predicted: 0 | 1 }[];
  };
}

/** Search, refit on the whole training set, and score on train and test. */
export async function trainModel(spec: ModelSpec, train: Dataset, test: Dataset, cfg: SearchConfig): Promise<TrainedModel> {
  const result = await randomizedSearch(spec, train, cfg);
  const onTrain = await evaluate(result.model, train);
  const onTest = await evaluate(result.model, test);
  const roc = rocCurve(test.y, onTest.proba);
  return {
    file: { format: 'lead-model/1', name: spec.name, features: train.columns, params: result.best, model: result.model },
    metrics: {
      model: spec.name,
      family: spec.family === 'xgboost' ? `xgboost (${spec.mode})` : spec.family,
      search: { scoring: cfg.scoring, cv: cfg.cv, n_iter: spec.nIter, best_score: result.bestScore, candidates: result.candidates },
      best_params: result.best,
      train: onTrain.metrics,
      test: onTest.metrics,
      test_roc_auc: rocAuc(roc),
    },
    plots: { roc, pr: prCurve(test.y, onTest.proba), confusion: confusionRows(test.y, onTest.pred) },
  };
}
