import type { ParamValue } from '../../../runner/api.js';
import { ParamReader } from '../params.js';
import { ML_LOGISTIC_PARAMS } from './ml-logistic.js';
import { parseSearchSpace, type SearchSpace } from './search-space.js';
import type { XgbMode } from './xgboost.js';

/** How one model family is configured in params.yaml (train.models.<name>). */
export type ModelSpec =
  | { readonly name: string; readonly family: 'logistic_regression' | 'ml_logistic_regression'; readonly nIter: number; readonly space: SearchSpace }
  | { readonly name: string; readonly family: 'xgboost'; readonly mode: XgbMode; readonly nIter: number; readonly space: SearchSpace };

export type Scoring = 'accuracy' | 'f1' | 'f1_weighted';
const SCORINGS: readonly Scoring[] = ['accuracy', 'f1', 'f1_weighted'];

export interface SearchConfig {
  readonly cv: number;
  readonly seed: number;
  readonly scoring: Scoring;
}

export interface TrainParams {
  readonly search: SearchConfig;
  readonly models: readonly ModelSpec[];
}

/** train: {seed, cv, scoring, models: {<name>: {family, [mode], n_iter, space}}}; a family's space is checked when a candidate is fitted, except ml_logistic_regression's keys (checked here). */
export function readTrainParams(params: { readonly [key: string]: ParamValue }): TrainParams {
  const t = ParamReader.of(params, 'train');
  const scoringText = t.get('scoring').string();
  const scoring = SCORINGS.find((s) => s === scoringText) ?? t.get('scoring').fail(`one of ${SCORINGS.join(', ')}`);
  const search: SearchConfig = { seed: t.get('seed').int(0), cv: t.get('cv').int(2), scoring: scoring as Scoring };
  const modelsRaw = t.get('models').raw();
  if (modelsRaw === null || typeof modelsRaw !== 'object' || Array.isArray(modelsRaw) || Object.keys(modelsRaw).length === 0) {
    t.get('models').fail('a mapping of model name → {family, n_iter, space}');
  }
  const models = Object.keys(modelsRaw as object).map((name): ModelSpec => {
    if (!/^[a-z0-9_]+$/.test(name)) t.get('models').fail(`model names of a-z, 0-9 and _ (got '${name}')`);
    const m = t.get('models').get(name);
    const family = m.get('family').string();
    const nIter = m.get('n_iter').int(1);
    const space = parseSearchSpace(m.get('space'));
    if (family === 'logistic_regression') return { name, family, nIter, space };
    if (family === 'ml_logistic_regression') {
      // Both must be given (the package's defaults take minutes here) and nothing else: it has no C, no penalty.
      for (const k of Object.keys(space)) {
        if (!(ML_LOGISTIC_PARAMS as readonly string[]).includes(k)) {
          m.get('space')
            .get(k)
            .fail(`absent: ml-logistic-regression takes only ${ML_LOGISTIC_PARAMS.join(' and ')} (no intercept option, no L2 penalty)`);
        }
      }
      for (const k of ML_LOGISTIC_PARAMS)
        if (!space[k]) m.get('space').get(k).fail('a value, a list or a distribution (ml_logistic_regression has no default for it)');
      return { name, family, nIter, space };
    }
    if (family === 'xgboost') {
      const mode = m.get('mode').string();
      if (mode !== 'random_forest' && mode !== 'boosting') m.get('mode').fail('random_forest or boosting');
      return { name, family, mode: mode as 'random_forest' | 'boosting', nIter, space };
    }
    return m.get('family').fail('logistic_regression, ml_logistic_regression or xgboost');
  });
  return { search, models };
}
