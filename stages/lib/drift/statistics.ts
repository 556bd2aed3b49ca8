/**
 * Statistics for drift checks, as pure functions: two-sample
 * Kolmogorov–Smirnov, chi-square test of homogeneity, and the population
 * stability index.
 */

/** Largest gap between the two samples' empirical CDFs. */
export function ksStatistic(a: readonly number[], b: readonly number[]): number {
  const x = [...a].sort((p, q) => p - q);
  const y = [...b].sort((p, q) => p - q);
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < x.length && j < y.length) {
    const v = Math.min(x[i]!, y[j]!);
    while (i < x.length && x[i]! <= v) i++;
    while (j < y.length && y[j]! <= v) j++;
    d = Math.max(d, Math.abs(i / x.length - j / y.length));
  }
  return d;
}

/** P(K > λ) for the Kolmogorov distribution: 2 Σ (-1)^(k-1) exp(-2 k² λ²). */
export function kolmogorovQ(lambda: number): number {
  if (lambda < 0.2) return 1;
  let sum = 0;
  for (let k = 1; k <= 100; k++) {
    const term = Math.exp(-2 * k * k * lambda * lambda);
    sum += (k % 2 ? 1 : -1) * term;
    if (term < 1e-12) break;
  }
  return Math.min(1, Math.max(0, 2 * sum));
}

/** Two-sample KS test with the asymptotic p-value (with Stephens' small-sample correction). */
export function ksTest(a: readonly number[], b: readonly number[]): { statistic: number; pValue: number } {
  const d = ksStatistic(a, b);
  const en = Math.sqrt((a.length * b.length) / (a.length + b.length));
  return { statistic: d, pValue: kolmogorovQ((en + 0.12 + 0.11 / en) * d) };
}

function logGamma(x: number): number {
  // Lanczos approximation (g = 7, n = 9)
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = c[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Upper regularized incomplete gamma Q(s, x) (series below s+1, continued fraction above). */
function gammaQ(s: number, x: number): number {
  if (x <= 0) return 1;
  if (x < s + 1) {
    let sum = 1 / s;
    let term = sum;
    for (let n = 1; n < 500; n++) {
      term *= x / (s + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-15) break;
    }
    return 1 - sum * Math.exp(-x + s * Math.log(x) - logGamma(s));
  }
  let b = x + 1 - s;
  let c = 1 / 1e-300;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 500; i++) {
    const an = -i * (i - s);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (Math.abs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.exp(-x + s * Math.log(x) - logGamma(s)) * h;
}

export function chiSquarePValue(statistic: number, df: number): number {
  return df <= 0 ? 1 : gammaQ(df / 2, statistic / 2);
}

/** Chi-square test that two samples of categories come from one distribution (a 2×k contingency table). */
export function chiSquareTest(reference: ReadonlyMap<string, number>, current: ReadonlyMap<string, number>): { statistic: number; df: number; pValue: number } {
  const cats = [...new Set([...reference.keys(), ...current.keys()])].filter((c) => (reference.get(c) ?? 0) + (current.get(c) ?? 0) > 0);
  const nr = cats.reduce((s, c) => s + (reference.get(c) ?? 0), 0);
  const nc = cats.reduce((s, c) => s + (current.get(c) ?? 0), 0);
  const n = nr + nc;
  let stat = 0;
  for (const c of cats) {
    const tot = (reference.get(c) ?? 0) + (current.get(c) ?? 0);
    for (const [obs, rowTotal] of [[reference.get(c) ?? 0, nr], [current.get(c) ?? 0, nc]] as const) {
      const expected = (tot * rowTotal) / n;
      if (expected > 0) stat += (obs - expected) ** 2 / expected;
    }
  }
  const df = cats.length - 1;
  return { statistic: stat, df, pValue: chiSquarePValue(stat, df) };
}

/** PSI = Σ (a − e)·ln(a / e) over bins; empty bins get a small floor so the log stays finite. */
export function psi(expected: readonly number[], actual: readonly number[]): number {
  const floor = 1e-4;
  const te = expected.reduce((s, x) => s + x, 0) || 1;
  const ta = actual.reduce((s, x) => s + x, 0) || 1;
  let sum = 0;
  expected.forEach((e, i) => {
    const pe = Math.max(e / te, floor);
    const pa = Math.max((actual[i] ?? 0) / ta, floor);
    sum += (pa - pe) * Math.log(pa / pe);
  });
  return sum;
}

/** Bin edges at the reference's quantiles (duplicates merged), so each bin holds about the same share of it. */
export function quantileEdges(reference: readonly number[], bins: number): number[] {
  const s = [...reference].sort((a, b) => a - b);
  const edges: number[] = [];
  for (let i = 1; i < bins; i++) {
    const q = s[Math.min(s.length - 1, Math.floor((i * s.length) / bins))]!;
    if (edges.at(-1) !== q) edges.push(q);
  }
  return edges;
}

export function histogram(values: readonly number[], edges: readonly number[]): number[] {
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (const v of values) {
    let k = 0;
    while (k < edges.length && v >= edges[k]!) k++;
    counts[k]!++;
  }
  return counts;
}
