import { createRequire } from 'node:module';
import type { Matrix } from 'ml-matrix';
import { sigmoid } from './logistic.js';

/**
 * Logistic regression fitted by the ml-logistic-regression package (2.0.0), the
 * family `ml_logistic_regression` of train.models. What that package does, read
 * from its source (node_modules/ml-logistic-regression/src):
 * - no intercept: each classifier is σ(w·x) with weights only. We give it a
 *   constant 1 as a last feature, so one weight plays the intercept (our
 *   one-hot features drop their first category, so without it the reference
 *   group would be held at probability one half);
 * - no regularisation: it maximises the plain log-likelihood; there is no C,
 *   no L2 (nor L1) to set;
 * - plain batch gradient ascent: from w = 0, exactly `num_steps` steps of
 *   w ← w + learning_rate · Xᵀ(y − σ(Xw)), with no line search and no
 *   convergence test. The gradient is a sum over the rows, not a mean, so a
 *   step that suits one data size can oscillate on a larger one, silently;
 * - one-vs-all even for two classes: it fits a second classifier for class 0
 *   (the first one's negation), so each fit costs twice the steps.
 * Its defaults (50,000 steps at 5e-4) took about four minutes (measured) on our 2,496
 * training rows, so here neither is defaulted: both must be in the space.
 */

export interface MlLogisticModel {
  readonly kind: 'ml_logistic_regression';
  readonly coef: readonly number[];
  readonly intercept: number;
}

export interface MlLogisticParams {
  readonly learning_rate: number;
  readonly num_steps: number;
}

/** The hyperparameters the package has; anything else in a space (C, penalty …) is refused. */
export const ML_LOGISTIC_PARAMS: readonly (keyof MlLogisticParams)[] = ['learning_rate', 'num_steps'];

interface TwoClassClassifier {
  readonly weights: Matrix;
}
interface LogisticRegression {
  train(X: Matrix, Y: Matrix): void;
  readonly classifiers: readonly TwoClassClassifier[];
}
type LogisticRegressionClass = new (options: { numSteps: number; learningRate: number }) => LogisticRegression;

let loaded: { LogisticRegression: LogisticRegressionClass; Matrix: typeof Matrix } | undefined;

/**
 * Loaded on the first fit only: importing ml-matrix costs 60 to 150 ms, which
 * `leads predict` and the service (they only need mlLogisticProba) should not
 * pay. The package is CommonJS without type declarations: typed by what we use.
 */
function packages(): NonNullable<typeof loaded> {
  const require = createRequire(import.meta.url);
  loaded ??= {
    LogisticRegression: require('ml-logistic-regression') as LogisticRegressionClass,
    Matrix: (require('ml-matrix') as typeof import('ml-matrix')).Matrix,
  };
  return loaded;
}

/** Fit with the package; `where` names the params.yaml space for errors. */
export function fitMlLogistic(X: readonly (readonly number[])[], y: readonly number[], p: MlLogisticParams, where: string): MlLogisticModel {
  if (!(Number.isFinite(p.learning_rate) && p.learning_rate > 0)) {
    throw new Error(`params: ${where}.learning_rate must be a positive number, got ${JSON.stringify(p.learning_rate)}`);
  }
  if (!(Number.isInteger(p.num_steps) && p.num_steps >= 1)) {
    throw new Error(`params: ${where}.num_steps must be an integer >= 1, got ${JSON.stringify(p.num_steps)}`);
  }
  if (X.length === 0) throw new Error('cannot fit a logistic regression on no rows');
  const { LogisticRegression, Matrix } = packages();
  const model = new LogisticRegression({ numSteps: p.num_steps, learningRate: p.learning_rate });
  model.train(new Matrix(X.map((x) => [...x, 1])), Matrix.columnVector([...y]));
  // The package numbers classes 0..n-1 and its classifier i is trained to say "not class i": classifier 0 gives P(y = 1).
  const w = model.classifiers[0]!.weights.to1DArray();
  if (!w.every(Number.isFinite)) {
    throw new Error(`params: ${where}.learning_rate ${p.learning_rate} is too large for ${X.length} rows: gradient ascent diverged`);
  }
  return { kind: 'ml_logistic_regression', coef: w.slice(0, -1), intercept: w[w.length - 1]! };
}

/** σ(w·x + b), the package's testScores with the constant feature. */
export function mlLogisticProba(model: MlLogisticModel, X: readonly (readonly number[])[]): number[] {
  return X.map((x) => {
    let z = model.intercept;
    for (let j = 0; j < model.coef.length; j++) z += model.coef[j]! * x[j]!;
    return sigmoid(z);
  });
}
