/**
 * L2-regularised logistic regression with an unpenalised intercept, in
 * sklearn's convention: minimise 0.5·‖w‖² + C·Σ logloss(yᵢ, σ(w·xᵢ + b)).
 * Solved exactly by Newton's method with a backtracking line search; the
 * problem is small (a dozen features), so each step solves the full Hessian.
 *
 * Why our own fit is the default `logistic_regression` and not the
 * ml-logistic-regression package (the `ml_logistic_regression` family,
 * ml-logistic.ts): the spec's model is sklearn's, searched over C, and the
 * package has no C (no L2 penalty at all) and no intercept; and it runs a
 * fixed number of fixed-size gradient steps, so its answer depends on the
 * step size and count, not only on the data. Newton reaches the optimum to
 * a gradient below 1e-9 in about ten steps (milliseconds); the package's
 * default 50,000 steps took about four minutes on the same 2,496 rows.
 */

export interface LogisticModel {
  readonly kind: 'logistic_regression';
  readonly coef: readonly number[];
  readonly intercept: number;
}

export interface LogisticFit {
  readonly model: LogisticModel;
  readonly iterations: number;
  /** Max-norm of the penalised loss's gradient at the solution. */
  readonly gradientNorm: number;
}

export interface LogisticOptions {
  readonly C: number;
  readonly maxIter?: number;
  /** Stop when the gradient's max-norm falls below this. */
  readonly tol?: number;
}

type Matrix = readonly (readonly number[])[];

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** log(1 + e^z) without overflow. */
function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

/** θ = [w₀ … w_{d−1}, b]. */
function margins(X: Matrix, theta: readonly number[]): number[] {
  const d = theta.length - 1;
  return X.map((x) => {
    let z = theta[d]!;
    for (let j = 0; j < d; j++) z += theta[j]! * x[j]!;
    return z;
  });
}

export function penalizedLoss(X: Matrix, y: readonly number[], theta: readonly number[], C: number): number {
  const d = theta.length - 1;
  let reg = 0;
  for (let j = 0; j < d; j++) reg += theta[j]! * theta[j]!;
  let data = 0;
  margins(X, theta).forEach((z, i) => (data += softplus(z) - y[i]! * z));
  return 0.5 * reg + C * data;
}

/** ∇ of penalizedLoss with respect to θ = [w, b]. */
export function penalizedGradient(X: Matrix, y: readonly number[], theta: readonly number[], C: number): number[] {
  const d = theta.length - 1;
  const g = theta.map((t, j) => (j < d ? t : 0));
  margins(X, theta).forEach((z, i) => {
    const r = C * (sigmoid(z) - y[i]!);
    const x = X[i]!;
    for (let j = 0; j < d; j++) g[j]! += r * x[j]!;
    g[d]! += r;
  });
  return g;
}

function hessian(X: Matrix, theta: readonly number[], C: number): number[][] {
  const p = theta.length;
  const d = p - 1;
  const H = Array.from({ length: p }, (_, i) => Array.from({ length: p }, (_, j) => (i === j && i < d ? 1 : 0)));
  const xt = new Array<number>(p);
  margins(X, theta).forEach((z, i) => {
    const s = sigmoid(z);
    const w = C * s * (1 - s);
    const x = X[i]!;
    for (let j = 0; j < d; j++) xt[j] = x[j]!;
    xt[d] = 1;
    for (let a = 0; a < p; a++) {
      const wa = w * xt[a]!;
      const row = H[a]!;
      for (let b = 0; b <= a; b++) row[b]! += wa * xt[b]!;
    }
  });
  for (let a = 0; a < p; a++) for (let b = a + 1; b < p; b++) H[a]![b] = H[b]![a]!;
  return H;
}

/** Solve A x = b for symmetric positive definite A (Cholesky); undefined if A is not SPD. */
export function solveSpd(A: readonly (readonly number[])[], b: readonly number[]): number[] | undefined {
  const n = b.length;
  const L = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i]![j]!;
      for (let k = 0; k < j; k++) s -= L[i]![k]! * L[j]![k]!;
      if (i === j) {
        if (!(s > 0)) return undefined;
        L[i]![i] = Math.sqrt(s);
      } else L[i]![j] = s / L[j]![j]!;
    }
  }
  const z = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= L[i]![k]! * z[k]!;
    z[i] = s / L[i]![i]!;
  }
  const x = new Array<number>(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = z[i]!;
    for (let k = i + 1; k < n; k++) s -= L[k]![i]! * x[k]!;
    x[i] = s / L[i]![i]!;
  }
  return x;
}

const maxAbs = (v: readonly number[]): number => v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);

export function fitLogistic(X: Matrix, y: readonly number[], opts: LogisticOptions): LogisticFit {
  const { C, maxIter = 100, tol = 1e-9 } = opts;
  if (!(C > 0)) throw new Error(`C must be positive, got ${C}`);
  if (X.length === 0) throw new Error('cannot fit a logistic regression on no rows');
  const d = X[0]!.length;
  let theta = new Array<number>(d + 1).fill(0);
  let loss = penalizedLoss(X, y, theta, C);
  let g = penalizedGradient(X, y, theta, C);
  let it = 0;
  for (; it < maxIter && maxAbs(g) > tol; it++) {
    const H = hessian(X, theta, C);
    // A Hessian that is numerically singular (saturated probabilities) gets a tiny ridge on the intercept.
    let step = solveSpd(H, g);
    for (let ridge = 1e-10; step === undefined && ridge < 1e6; ridge *= 100) {
      step = solveSpd(
        H.map((row, i) => row.map((v, j) => (i === j ? v + ridge : v))),
        g,
      );
    }
    if (step === undefined) throw new Error('logistic regression: the Hessian is not positive definite');
    const decrement = step.reduce((s, v, j) => s + v * g[j]!, 0);
    if (decrement < 1e-13 * (1 + Math.abs(loss))) {
      // Inside Newton's quadratic region the loss change is below its own rounding
      // error, so the line search cannot judge the step; judge it by the gradient.
      const next = theta.map((v, j) => v - step![j]!);
      const nextG = penalizedGradient(X, y, next, C);
      if (!(maxAbs(nextG) < maxAbs(g))) break;
      theta = next;
      g = nextG;
      loss = penalizedLoss(X, y, theta, C);
      continue;
    }
    // Armijo backtracking; far from the optimum a full Newton step can overshoot.
    let t = 1;
    let next = theta.map((v, j) => v - step![j]!);
    let nextLoss = penalizedLoss(X, y, next, C);
    while (nextLoss > loss - 1e-4 * t * decrement && t > 1e-10) {
      t /= 2;
      next = theta.map((v, j) => v - t * step![j]!);
      nextLoss = penalizedLoss(X, y, next, C);
    }
    if (t <= 1e-10) break;
    theta = next;
    loss = nextLoss;
    g = penalizedGradient(X, y, theta, C);
  }
  return {
    model: { kind: 'logistic_regression', coef: theta.slice(0, d), intercept: theta[d]! },
    iterations: it,
    gradientNorm: maxAbs(g),
  };
}

export function logisticProba(model: LogisticModel, X: Matrix): number[] {
  return margins(X, [...model.coef, model.intercept]).map(sigmoid);
}
