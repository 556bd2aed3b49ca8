import type { Dataset, Label } from '../data/features.js';
import { stratifiedKFold, take } from '../data/split.js';
import { fitLogistic } from './logistic.js';
import { fitMlLogistic } from './ml-logistic.js';
import { classificationMetrics, confusionRows, prCurve, rocAuc, rocCurve, type ClassificationMetrics, type PrPoint, type RocPoint } from './metrics.js';
import { predictProba, toLabels, type Model, type ModelFile } from './model.js';
import { sampleCandidates, type Candidate } from './search-space.js';
import type { ModelSpec, Scoring, SearchConfig } from './train-config.js';
import { trainXgb, XGB_OBJECTIVES, type XgbObjective } from './xgboost.js';

/**
 * Training one model family of train.models: a randomized search over k-fold
 * CV, a refit of the winner on the whole training set, and its scores, curves
 * and confusion on train and test.
 */

interface CandidateScore {
  readonly params: Candidate;
  readonly mean_score: number;
  readonly fold_scores: readonly number[];
}

interface SearchResult {
  readonly best: Candidate;
  readonly bestScore: number;
  readonly candidates: readonly CandidateScore[];
  readonly model: Model;
}

function num(c: Candidate, key: string, spec: ModelSpec): number {
  const v = c[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new Error(`params: train.models.${spec.name}.space.${key} must give numbers, got ${JSON.stringify(v)}`);
  }
  return v;
}

function objective(c: Candidate, spec: ModelSpec): XgbObjective {
  const v = c.objective;
  const found = XGB_OBJECTIVES.find((o) => o === v);
  if (!found)
    throw new Error(
      `params: train.models.${spec.name}.space.objective must be among ${XGB_OBJECTIVES.join(', ')} (what ml-xgboost supports), got ${JSON.stringify(v)}`,
    );
  return found;
}

/** Fit one family with one candidate's hyperparameters. seed feeds XGBoost's row/column sampling. */
async function fitCandidate(spec: ModelSpec, c: Candidate, data: Dataset, seed: number): Promise<Model> {
  switch (spec.family) {
    case 'logistic_regression': {
      const maxIter = c.max_iter === undefined ? 100 : num(c, 'max_iter', spec);
      return fitLogistic(data.X, data.y, { C: num(c, 'C', spec), maxIter }).model;
    }
    case 'ml_logistic_regression':
      return fitMlLogistic(
        data.X,
        data.y,
        { learning_rate: num(c, 'learning_rate', spec), num_steps: num(c, 'num_steps', spec) },
        `train.models.${spec.name}.space`,
      );
    case 'xgboost':
      return trainXgb(data.X, data.y, {
        mode: spec.mode,
        n_estimators: num(c, 'n_estimators', spec),
        learning_rate: num(c, 'learning_rate', spec),
        gamma: num(c, 'gamma', spec),
        max_depth: num(c, 'max_depth', spec),
        subsample: num(c, 'subsample', spec),
        colsample_bylevel: c.colsample_bylevel === undefined ? 1 : num(c, 'colsample_bylevel', spec),
        reg_lambda: c.reg_lambda === undefined ? 1 : num(c, 'reg_lambda', spec),
        objective: objective(c, spec),
        seed,
      });
  }
}

function score(metrics: ClassificationMetrics, scoring: Scoring): number {
  return metrics[scoring];
}

async function evaluate(model: Model, data: Dataset): Promise<{ proba: number[]; pred: Label[]; metrics: ClassificationMetrics }> {
  const proba = await predictProba(model, data.X);
  const pred = toLabels(proba);
  return { proba, pred, metrics: classificationMetrics(data.y, pred) };
}

function subset(data: Dataset, idx: readonly number[]): Dataset {
  return { columns: data.columns, X: take(data.X, idx), y: take(data.y, idx) };
}

/**
 * RandomizedSearchCV: n_iter candidates from the space, each scored by the
 * mean over stratified k folds; ties go to the earlier candidate; the winner
 * is refitted on all of the training data.
 */
async function randomizedSearch(spec: ModelSpec, data: Dataset, cfg: SearchConfig): Promise<SearchResult> {
  const candidates = sampleCandidates(spec.space, spec.nIter, cfg.seed);
  const folds = stratifiedKFold(data.y, cfg.cv, cfg.seed);
  const scored: CandidateScore[] = [];
  for (const params of candidates) {
    const foldScores: number[] = [];
    for (const fold of folds) {
      const model = await fitCandidate(spec, params, subset(data, fold.train), cfg.seed);
      foldScores.push(score((await evaluate(model, subset(data, fold.test))).metrics, cfg.scoring));
    }
    scored.push({ params, mean_score: foldScores.reduce((a, b) => a + b, 0) / foldScores.length, fold_scores: foldScores });
  }
  let best = scored[0]!;
  for (const s of scored) if (s.mean_score > best.mean_score) best = s;
  const model = await fitCandidate(spec, best.params, data, cfg.seed);
  return { best: best.params, bestScore: best.mean_score, candidates: scored, model };
}

/** What train writes per model: deterministic for the same data and params (no times, no paths). */
export interface ModelMetrics {
  readonly model: string;
  readonly family: string;
  readonly search: {
    readonly scoring: string;
    readonly cv: number;
    readonly n_iter: number;
    readonly best_score: number;
    readonly candidates: readonly CandidateScore[];
  };
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
