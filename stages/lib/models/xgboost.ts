import { createRequire } from 'node:module';
import { sigmoid } from './logistic.js';

/**
 * Gradient-boosted trees through ml-xgboost 1.1.2, a WASM build of XGBoost
 * (~0.7x). What that build offers, read from its sources and binary:
 * - objectives binary:logistic (probabilities) and binary:logitraw (margins);
 *   there is no binary:hinge;
 * - num_parallel_tree works, so random-forest mode is one boosting round of
 *   num_parallel_tree trees (XGBoost divides the learning rate by the number
 *   of parallel trees, i.e. the forest averages);
 * - no colsample_bynode (added in XGBoost 0.81); colsample_bylevel is the
 *   nearest per-split column sampling it has;
 * - single-threaded, so a fixed `seed` gives the same trees every time.
 */

export type XgbObjective = 'binary:logistic' | 'binary:logitraw';
export const XGB_OBJECTIVES: readonly XgbObjective[] = ['binary:logistic', 'binary:logitraw'];

export type XgbMode = 'random_forest' | 'boosting';

export interface XgbParams {
  readonly mode: XgbMode;
  readonly n_estimators: number;
  readonly learning_rate: number;
  readonly gamma: number;
  readonly max_depth: number;
  readonly subsample: number;
  readonly colsample_bylevel: number;
  readonly reg_lambda: number;
  readonly objective: XgbObjective;
  readonly seed: number;
}

/** A trained booster in a portable form: XGBoost's own binary model, base64, plus how to read its output. */
export interface XgbModel {
  readonly kind: 'xgboost';
  readonly objective: XgbObjective;
  readonly booster: string;
}

interface XgbBooster {
  train(X: readonly (readonly number[])[], y: readonly number[]): void;
  predict(X: readonly (readonly number[])[]): number[];
  toJSON(): { name: string; model: number[]; options: Record<string, unknown> };
  free(): void;
}
interface XgbClass {
  new (options: Record<string, string | number>): XgbBooster;
  load(model: { name: string; model: ArrayLike<number>; options: Record<string, unknown> }): XgbBooster;
}

let loading: Promise<XgbClass> | undefined;

/**
 * Load the WASM module once. Its Emscripten loader first tries streaming
 * compilation with fetch() on a file path, which always fails under Node and
 * prints two lines to stderr before falling back. Hiding
 * WebAssembly.instantiateStreaming for the synchronous require makes it take
 * the working path directly, so nothing is printed and no message is
 * filtered: a real load failure still surfaces (as the rejected promise).
 * The loader also installs an uncaughtException handler that rethrows, which
 * would turn any later crash into exit code 7; that handler is removed.
 */
function loadXgboost(): Promise<XgbClass> {
  loading ??= (async () => {
    const require = createRequire(import.meta.url);
    const wasm = WebAssembly as { instantiateStreaming?: unknown };
    const streaming = wasm.instantiateStreaming;
    const handlersBefore = new Set(process.listeners('uncaughtException'));
    let ready: Promise<XgbClass>;
    try {
      wasm.instantiateStreaming = undefined;
      ready = require('ml-xgboost') as Promise<XgbClass>;
    } finally {
      wasm.instantiateStreaming = streaming;
      for (const h of process.listeners('uncaughtException')) if (!handlersBefore.has(h)) process.off('uncaughtException', h);
    }
    return ready;
  })();
  return loading;
}

function boosterOptions(p: XgbParams): Record<string, string | number> {
  if (!(p.subsample > 0 && p.subsample <= 1)) throw new Error(`xgboost subsample must be in (0, 1], got ${p.subsample}`);
  const forest = p.mode === 'random_forest';
  return {
    booster: 'gbtree',
    objective: p.objective,
    eta: p.learning_rate,
    gamma: p.gamma,
    max_depth: p.max_depth,
    min_child_weight: 1,
    subsample: p.subsample,
    colsample_bytree: 1,
    colsample_bylevel: p.colsample_bylevel,
    lambda: p.reg_lambda,
    base_score: 0.5,
    num_parallel_tree: forest ? p.n_estimators : 1,
    // ml-xgboost's name for the number of boosting rounds.
    iterations: forest ? 1 : p.n_estimators,
    seed: p.seed,
    silent: 1,
    nthread: 1,
  };
}

function toProbability(objective: XgbObjective, raw: number): number {
  return objective === 'binary:logitraw' ? sigmoid(raw) : raw;
}

/** Train, serialise, free: the WASM heap is not garbage-collected, so no booster outlives its call. */
export async function trainXgb(X: readonly (readonly number[])[], y: readonly number[], p: XgbParams): Promise<XgbModel> {
  const XGBoost = await loadXgboost();
  const booster = new XGBoost(boosterOptions(p));
  try {
    booster.train(X, y);
    const saved = booster.toJSON();
    return { kind: 'xgboost', objective: p.objective, booster: Buffer.from(Uint8Array.from(saved.model, (b) => b & 0xff)).toString('base64') };
  } finally {
    booster.free();
  }
}

/**
 * Loaded boosters, one per model object: loading decodes and parses the whole
 * model in WASM, which would dominate a one-row prediction (the service's
 * case). A booster's WASM memory is freed once its model object is collected.
 */
const boosters = new WeakMap<XgbModel, XgbBooster>();
const release = new FinalizationRegistry<XgbBooster>((b) => b.free());

export async function xgbProba(model: XgbModel, X: readonly (readonly number[])[]): Promise<number[]> {
  if (X.length === 0) return [];
  let booster = boosters.get(model);
  if (!booster) {
    const XGBoost = await loadXgboost();
    booster = boosters.get(model) ?? XGBoost.load({ name: 'ml-xgboost', model: Buffer.from(model.booster, 'base64'), options: {} });
    if (!boosters.has(model)) {
      boosters.set(model, booster);
      release.register(model, booster);
    }
  }
  return booster.predict(X).map((raw) => toProbability(model.objective, raw));
}
