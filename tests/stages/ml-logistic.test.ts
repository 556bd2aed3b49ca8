import { createRequire } from 'node:module';
import { Matrix } from 'ml-matrix';
import { describe, expect, it } from 'vitest';
import type { Dataset, Label } from '../../stages/lib/data/features.js';
import { fitLogistic } from '../../stages/lib/models/logistic.js';
import { fitMlLogistic, mlLogisticProba } from '../../stages/lib/models/ml-logistic.js';
import { predictProba, toLabels } from '../../stages/lib/models/model.js';
import { readTrainParams } from '../../stages/lib/models/train-config.js';
import { trainModel } from '../../stages/lib/models/training.js';
import { Prng } from '../../stages/lib/prng.js';

/** Two features in [0, 1] and a true intercept of -2: a fit without one could not get the base rate right. */
function synthetic(n: number, seed: number): Dataset {
  const rng = new Prng(seed);
  const X: number[][] = [];
  const y: Label[] = [];
  for (let i = 0; i < n; i++) {
    const x = [rng.next(), rng.next() < 0.5 ? 1 : 0];
    X.push(x);
    y.push(rng.next() < 1 / (1 + Math.exp(-(4 * x[0]! + 1.5 * x[1]! - 2))) ? 1 : 0);
  }
  return { columns: ['a', 'b'], X, y };
}

const params = (space: Record<string, unknown>, family = 'ml_logistic_regression') =>
  ({ train: { seed: 1, cv: 3, scoring: 'accuracy', models: { gd: { family, n_iter: 1, space } } } }) as never;

describe('the ml_logistic_regression family (ml-logistic-regression)', () => {
  const data = synthetic(300, 7);

  it('trains to the unpenalised maximum-likelihood fit, intercept included', () => {
    const m = fitMlLogistic(data.X, data.y, { learning_rate: 0.01, num_steps: 3000 }, 'train.models.gd.space');
    expect(m.kind).toBe('ml_logistic_regression');
    // Our exact Newton fit with a negligible L2 (C huge) is the same optimum.
    const exact = fitLogistic(data.X, data.y, { C: 1e9 }).model;
    m.coef.forEach((w, j) => expect(w).toBeCloseTo(exact.coef[j]!, 2));
    expect(m.intercept).toBeCloseTo(exact.intercept, 2);
    expect(m.intercept).toBeLessThan(-1);
  });

  it('predicts what the package itself scores, and through the model file dispatch', async () => {
    const m = fitMlLogistic(data.X, data.y, { learning_rate: 0.01, num_steps: 200 }, 's');
    const LogisticRegression = createRequire(import.meta.url)('ml-logistic-regression');
    const pkg = new LogisticRegression({ numSteps: 200, learningRate: 0.01 });
    pkg.train(new Matrix(data.X.map((x) => [...x, 1])), Matrix.columnVector([...data.y]));
    const theirs: number[] = pkg.classifiers[0].testScores(new Matrix(data.X.map((x) => [...x, 1])));
    const ours = mlLogisticProba(m, data.X);
    ours.forEach((p, i) => expect(p).toBeCloseTo(theirs[i]!, 12));
    expect(await predictProba(m, data.X)).toEqual(ours);
    // And the package's own class prediction (its smallest "not this class" score) agrees.
    expect(toLabels(ours)).toEqual(pkg.predict(new Matrix(data.X.map((x) => [...x, 1]))));
  });

  it('is a train.models family: searched, refitted and scored like the others', async () => {
    const { models, search } = readTrainParams(params({ learning_rate: [0.005, 0.01], num_steps: 300 }));
    const trained = await trainModel(models[0]!, data, synthetic(100, 8), search);
    expect(trained.metrics.family).toBe('ml_logistic_regression');
    expect(trained.metrics.search.candidates).toHaveLength(1);
    expect(trained.file.model.kind).toBe('ml_logistic_regression');
    expect(trained.metrics.test.accuracy).toBeGreaterThan(0.6);
  });

  it('refuses what the package does not have, naming the params.yaml key', () => {
    expect(() => readTrainParams(params({ C: [1, 10], learning_rate: 0.01, num_steps: 100 }))).toThrow(
      /^params: train\.models\.gd\.space\.C must be absent: ml-logistic-regression takes only learning_rate and num_steps \(no intercept option, no L2 penalty\), got \[1,10\]$/,
    );
    expect(() => readTrainParams(params({ learning_rate: 0.01 }))).toThrow(
      /^params: train\.models\.gd\.space\.num_steps must be a value, a list or a distribution/,
    );
    expect(() => readTrainParams(params({ learning_rate: 0.01, num_steps: 10 }, 'ml_logistic'))).toThrow(
      /^params: train\.models\.gd\.family must be logistic_regression, ml_logistic_regression or xgboost, got "ml_logistic"$/,
    );
  });

  it('refuses bad values when a candidate is fitted, naming the key', async () => {
    const fit = (space: Record<string, unknown>) => {
      const { models, search } = readTrainParams(params(space));
      return trainModel(models[0]!, data, data, search);
    };
    await expect(fit({ learning_rate: 0, num_steps: 10 })).rejects.toThrow(
      /^params: train\.models\.gd\.space\.learning_rate must be a positive number, got 0$/,
    );
    await expect(fit({ learning_rate: 0.01, num_steps: 2.5 })).rejects.toThrow(
      /^params: train\.models\.gd\.space\.num_steps must be an integer >= 1, got 2\.5$/,
    );
    await expect(fit({ learning_rate: 'fast', num_steps: 10 })).rejects.toThrow(
      /^params: train\.models\.gd\.space\.learning_rate must give numbers, got "fast"$/,
    );
  });
});
