import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { REPO, TempRepo } from '../helpers.js';
import { flatten } from '../../runner/revision.js';

/**
 * A repository with the lead pipeline's pipeline.yaml and params.yaml and a
 * grid of recorded experiments whose metrics are the real metrics files with
 * each experiment's numbers nudged: what `exp show` sees after a real grid,
 * without training anything.
 */
const METRICS_FILES = [
  'data/metrics/logistic_regression.json',
  'data/metrics/selected.json',
  'data/metrics/xgboost_boost.json',
  'data/metrics/xgboost_rf.json',
];

function numericFlat(text: string): Record<string, unknown> {
  return Object.fromEntries(Object.entries(flatten(JSON.parse(text))).filter(([, v]) => typeof v === 'number' || typeof v === 'boolean'));
}

/** Nudge every number that is not a count of rows or a search setting, differently per experiment. */
function nudge(flat: Record<string, unknown>, i: number): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(flat).map(([k, v]) => {
      if (typeof v !== 'number' || /(^|\.)(n|cv|n_iter|n_estimators)$/.test(k)) return [k, v];
      const f = 1 + (((i * 7 + k.length) % 11) - 5) / 100;
      return [k, Number.isInteger(v) ? Math.round(v * f) : v * f];
    }),
  );
}

export function leadGridRepo(grid: { seed: number; cv: number }[]): TempRepo {
  const paramsText = fs.readFileSync(path.join(REPO, 'params.yaml'), 'utf8');
  const repo = new TempRepo({ 'pipeline.yaml': fs.readFileSync(path.join(REPO, 'pipeline.yaml'), 'utf8'), 'params.yaml': paramsText });
  const baseParams = flatten(YAML.parse(paramsText));
  const metricsText = Object.fromEntries(METRICS_FILES.map((f) => [f, fs.readFileSync(path.join(REPO, f), 'utf8')]));
  grid.forEach(({ seed, cv }, i) => {
    const name = `exp-${i + 1}`;
    const rec = {
      name,
      status: 'success',
      createdAt: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(),
      durationMs: 1000 + i,
      overrides: { 'params.yaml': { 'split.seed': seed, 'train.cv': cv } },
      params: { 'params.yaml': { ...baseParams, 'split.seed': seed, 'train.cv': cv } },
      metrics: Object.fromEntries(METRICS_FILES.map((f) => [f, nudge(numericFlat(metricsText[f]!), i)])),
    };
    repo.write({ [`.lockstep/exps/${name}.json`]: JSON.stringify(rec) });
  });
  return repo;
}

export const GRID_6 = [1, 2, 3].flatMap((seed) => [2, 3].map((cv) => ({ seed, cv })));
