import { describe, expect, it } from 'vitest';
import { cleanRows } from '../../stages/lib/data/clean.js';
import { readCsv } from '../../stages/lib/data/csv.js';
import { featureVector, fitFeatureSchema } from '../../stages/lib/data/features.js';
import { fitLogistic, logisticProba, penalizedGradient, penalizedLoss, solveSpd } from '../../stages/lib/models/logistic.js';
import { toLabels } from '../../stages/lib/models/model.js';
import { Prng } from '../../stages/lib/prng.js';
import { stratifiedSplit, take } from '../../stages/lib/data/split.js';
import { HAS_REAL_DATA, RAW_REAL, repoParams, VALIDATOR_X, VALIDATOR_Y } from './fixtures.js';
import { classificationMetrics } from '../../stages/lib/models/metrics.js';

function synthetic(n: number, seed: number): { X: number[][]; y: number[] } {
  const rng = new Prng(seed);
  const X: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = [rng.uniform(-2, 2), rng.uniform(0, 5), rng.next() < 0.3 ? 1 : 0];
    X.push(x);
    y.push(rng.next() < 1 / (1 + Math.exp(-(1.5 * x[0]! - 0.7 * x[1]! + 2 * x[2]! + 1))) ? 1 : 0);
  }
  return { X, y };
}

const maxAbs = (v: number[]): number => Math.max(...v.map(Math.abs));

describe('L2 logistic regression with intercept', () => {
  it('the analytic gradient matches finite differences of the penalised loss', () => {
    const { X, y } = synthetic(50, 3);
    const theta = [0.3, -0.2, 0.5, 0.1];
    const g = penalizedGradient(X, y, theta, 2);
    theta.forEach((_, j) => {
      const h = 1e-6;
      const up = theta.map((t, k) => (k === j ? t + h : t));
      const dn = theta.map((t, k) => (k === j ? t - h : t));
      expect(g[j]).toBeCloseTo((penalizedLoss(X, y, up, 2) - penalizedLoss(X, y, dn, 2)) / (2 * h), 5);
    });
    // The intercept (last) is not penalised: with zero data weight only w is pulled to zero.
    expect(penalizedGradient([[1, 1, 1]], [0.5], [1, 2, 3, 4], 0)).toEqual([1, 2, 3, 0]);
  });

  it.each([0.01, 1, 100])('reaches the optimum on synthetic data (C=%s): gradient < 1e-6', (C) => {
    const { X, y } = synthetic(500, 11);
    const fit = fitLogistic(X, y, { C });
    expect(fit.gradientNorm).toBeLessThan(1e-6);
    expect(maxAbs(penalizedGradient(X, y, [...fit.model.coef, fit.model.intercept], C))).toBeLessThan(1e-6);
  });

  it('heavy regularisation shrinks the weights, while the unpenalised intercept still matches the base rate', () => {
    const { X, y } = synthetic(500, 11);
    const weak = fitLogistic(X, y, { C: 100 }).model;
    const strong = fitLogistic(X, y, { C: 1e-5 }).model;
    const norm = (w: readonly number[]): number => Math.hypot(...w);
    expect(norm(strong.coef)).toBeLessThan(norm(weak.coef) / 5);
    // Nearly all weight gone: the intercept alone matches the base rate.
    const rate = y.reduce((a, b) => a + b, 0) / y.length;
    expect(1 / (1 + Math.exp(-strong.intercept))).toBeCloseTo(rate, 2);
  });

  it('solves SPD systems and refuses indefinite ones', () => {
    expect(
      solveSpd(
        [
          [4, 2],
          [2, 3],
        ],
        [2, 1],
      )!.map((v) => +v.toFixed(12)),
    ).toEqual([0.5, 0]);
    expect(
      solveSpd(
        [
          [1, 2],
          [2, 1],
        ],
        [1, 1],
      ),
    ).toBeUndefined();
  });
});

describe.skipIf(!HAS_REAL_DATA)('logistic regression on the real data', () => {
  it('C=100: optimality (gradient < 1e-6), test F1 about 0.77, validator [0,1,0,1,0]', () => {
    const { rows } = cleanRows(readCsv(RAW_REAL).rows, { minDate: '2024-01-01', maxDate: '2024-01-31' });
    const schema = fitFeatureSchema(rows);
    const X = rows.map((r) => featureVector(r, schema));
    const y = rows.map((r) => r.lead_indicator);
    const split = repoParams().split as { test_size: number; seed: number };
    const idx = stratifiedSplit(y, split.test_size, split.seed);
    const Xtr = take(X, idx.train),
      ytr = take(y, idx.train);
    const fit = fitLogistic(Xtr, ytr, { C: 100 });
    expect(maxAbs(penalizedGradient(Xtr, ytr, [...fit.model.coef, fit.model.intercept], 100))).toBeLessThan(1e-6);
    const test = classificationMetrics(take(y, idx.test), toLabels(logisticProba(fit.model, take(X, idx.test))));
    expect(test.accuracy).toBeGreaterThan(0.77);
    expect(test.f1).toBeGreaterThan(0.74);

    const vx = readCsv(VALIDATOR_X);
    expect(vx.columns).toEqual(schema.columns);
    const pred = toLabels(
      logisticProba(
        fit.model,
        vx.rows.map((r) => vx.columns.map((c) => Number(r[c]))),
      ),
    );
    const truth = readCsv(VALIDATOR_Y).rows.map((r) => Number(r.lead_indicator));
    expect(pred.slice(0, 5)).toEqual([0, 1, 0, 1, 0]);
    expect(pred.filter((p, i) => p === truth[i]).length / truth.length).toBeGreaterThanOrEqual(0.75);
  });
});
