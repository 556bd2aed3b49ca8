import { chiSquareTest, histogram, ksTest, psi, quantileEdges } from './statistics.js';
import type { FeatureSchema } from '../data/features.js';
import { CONTINUOUS_COLUMNS } from '../data/schema.js';

export interface DriftParams {
  /** A feature whose PSI reaches this has drifted (0.1 slight, 0.2 significant by the usual rule of thumb). */
  readonly psi_threshold: number;
  /** …or whose test (KS or chi-square) rejects "same distribution" below this p-value. */
  readonly p_value: number;
  /** The check fails when more than this share of the features drifted. */
  readonly max_drifted_share: number;
  readonly bins: number;
}

export const DEFAULT_DRIFT_PARAMS: DriftParams = { psi_threshold: 0.2, p_value: 0.01, max_drifted_share: 0.1, bins: 10 };

/** Values per model feature: the continuous ones as numbers, the one-hot groups folded back into their category. */
export interface FeatureTable {
  readonly n: number;
  readonly continuous: Readonly<Record<string, readonly number[]>>;
  readonly categorical: Readonly<Record<string, readonly string[]>>;
}

export interface FeatureDrift {
  readonly feature: string;
  readonly kind: 'continuous' | 'categorical';
  readonly test: 'kolmogorov-smirnov' | 'chi-square';
  readonly statistic: number;
  readonly p_value: number;
  readonly psi: number;
  readonly drifted: boolean;
  /** Bin labels and counts, for the report's charts. */
  readonly bins: readonly string[];
  readonly reference_counts: readonly number[];
  readonly current_counts: readonly number[];
}

export interface DriftReport {
  readonly reference_rows: number;
  readonly current_rows: number;
  readonly params: DriftParams;
  readonly features: readonly FeatureDrift[];
  readonly drifted: readonly string[];
  readonly drifted_share: number;
  readonly failed: boolean;
}

/** Feature-form rows (the model's columns) into per-feature values. */
export function featureTable(rows: readonly (readonly number[])[], schema: FeatureSchema): FeatureTable {
  const col = (name: string) => schema.columns.indexOf(name);
  const continuous: Record<string, number[]> = {};
  for (const c of CONTINUOUS_COLUMNS) continuous[c] = rows.map((r) => r[col(c)]!);
  const categorical: Record<string, string[]> = {};
  for (const e of schema.oneHot) {
    if (e.categories.length < 2) continue; // a single category carries no information
    const idx = e.categories.slice(1).map((c) => col(`${e.column}_${c}`));
    categorical[e.column] = rows.map((r) => {
      const k = idx.findIndex((i) => r[i] === 1);
      return String(k === -1 ? e.categories[0] : e.categories[k + 1]);
    });
  }
  return { n: rows.length, continuous, categorical };
}

const fmt = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(2));

/** Compare a new batch with the reference, feature by feature. Pure: the command does the I/O. */
export function driftReport(reference: FeatureTable, current: FeatureTable, params: DriftParams): DriftReport {
  const features: FeatureDrift[] = [];
  for (const [name, ref] of Object.entries(reference.continuous)) {
    const cur = current.continuous[name] ?? [];
    const edges = quantileEdges(ref, params.bins);
    const rc = histogram(ref, edges);
    const cc = histogram(cur, edges);
    const ks = ksTest(ref, cur);
    const p = psi(rc, cc);
    const labels = rc.map((_, i) => (i === 0 ? `< ${fmt(edges[0] ?? 0)}` : i === edges.length ? `≥ ${fmt(edges[i - 1]!)}` : `${fmt(edges[i - 1]!)}–${fmt(edges[i]!)}`));
    features.push({ feature: name, kind: 'continuous', test: 'kolmogorov-smirnov', statistic: ks.statistic, p_value: ks.pValue, psi: p, drifted: p >= params.psi_threshold || ks.pValue < params.p_value, bins: labels, reference_counts: rc, current_counts: cc });
  }
  for (const [name, ref] of Object.entries(reference.categorical)) {
    const cur = current.categorical[name] ?? [];
    const count = (xs: readonly string[]) => xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>());
    const rm = count(ref);
    const cm = count(cur);
    const cats = [...new Set([...rm.keys(), ...cm.keys()])].sort();
    const rc = cats.map((c) => rm.get(c) ?? 0);
    const cc = cats.map((c) => cm.get(c) ?? 0);
    const chi = chiSquareTest(rm, cm);
    const p = psi(rc, cc);
    features.push({ feature: name, kind: 'categorical', test: 'chi-square', statistic: chi.statistic, p_value: chi.pValue, psi: p, drifted: p >= params.psi_threshold || chi.pValue < params.p_value, bins: cats, reference_counts: rc, current_counts: cc });
  }
  const drifted = features.filter((f) => f.drifted).map((f) => f.feature);
  const share = features.length ? drifted.length / features.length : 0;
  return { reference_rows: reference.n, current_rows: current.n, params, features, drifted, drifted_share: share, failed: share > params.max_drifted_share };
}
