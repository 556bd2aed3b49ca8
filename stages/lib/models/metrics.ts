import type { Label } from '../data/features.js';

interface ConfusionMatrix {
  readonly tn: number;
  readonly fp: number;
  readonly fn: number;
  readonly tp: number;
}

export interface ClassificationMetrics {
  readonly n: number;
  readonly accuracy: number;
  /** Binary scores: class 1 is the positive class. */
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
  /** Averages over both classes weighted by their support (sklearn's average='weighted'). */
  readonly precision_weighted: number;
  readonly recall_weighted: number;
  readonly f1_weighted: number;
  readonly confusion_matrix: ConfusionMatrix;
}

function confusion(y: readonly Label[], pred: readonly Label[]): ConfusionMatrix {
  let tn = 0,
    fp = 0,
    fn = 0,
    tp = 0;
  y.forEach((t, i) => {
    const p = pred[i];
    if (t === 1) {
      if (p === 1) tp++;
      else fn++;
    } else if (p === 1) fp++;
    else tn++;
  });
  return { tn, fp, fn, tp };
}

/** sklearn's zero_division=0: an undefined ratio counts as 0. */
const ratio = (a: number, b: number): number => (b === 0 ? 0 : a / b);
const f1Of = (p: number, r: number): number => (p + r === 0 ? 0 : (2 * p * r) / (p + r));

export function classificationMetrics(y: readonly Label[], pred: readonly Label[]): ClassificationMetrics {
  if (y.length !== pred.length) throw new Error(`${y.length} labels but ${pred.length} predictions`);
  const cm = confusion(y, pred);
  const n = y.length;
  const perClass = [
    { p: ratio(cm.tn, cm.tn + cm.fn), r: ratio(cm.tn, cm.tn + cm.fp), support: cm.tn + cm.fp },
    { p: ratio(cm.tp, cm.tp + cm.fp), r: ratio(cm.tp, cm.tp + cm.fn), support: cm.tp + cm.fn },
  ];
  const weighted = (f: (c: (typeof perClass)[number]) => number): number =>
    ratio(
      perClass.reduce((s, c) => s + f(c) * c.support, 0),
      n,
    );
  const pos = perClass[1]!;
  return {
    n,
    accuracy: ratio(cm.tn + cm.tp, n),
    precision: pos.p,
    recall: pos.r,
    f1: f1Of(pos.p, pos.r),
    precision_weighted: weighted((c) => c.p),
    recall_weighted: weighted((c) => c.r),
    f1_weighted: weighted((c) => f1Of(c.p, c.r)),
    confusion_matrix: cm,
  };
}

export interface RocPoint {
  readonly fpr: number;
  readonly tpr: number;
  readonly threshold: number | null;
}
export interface PrPoint {
  readonly precision: number;
  readonly recall: number;
  readonly threshold: number | null;
}

/** Cumulative true/false positives when predicting 1 for score >= each distinct threshold, descending. */
function sweep(y: readonly Label[], scores: readonly number[]): { threshold: number; tp: number; fp: number }[] {
  const order = scores.map((s, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
  const out: { threshold: number; tp: number; fp: number }[] = [];
  let tp = 0,
    fp = 0;
  order.forEach((i, k) => {
    if (y[i] === 1) tp++;
    else fp++;
    const next = order[k + 1];
    if (next === undefined || scores[next] !== scores[i]) out.push({ threshold: scores[i]!, tp, fp });
  });
  return out;
}

/** ROC curve, one point per distinct score, from (0, 0) (threshold null: predict nothing positive). */
export function rocCurve(y: readonly Label[], scores: readonly number[]): RocPoint[] {
  const P = y.filter((v) => v === 1).length;
  const N = y.length - P;
  return [{ fpr: 0, tpr: 0, threshold: null }, ...sweep(y, scores).map((s) => ({ fpr: ratio(s.fp, N), tpr: ratio(s.tp, P), threshold: s.threshold }))];
}

/** Precision–recall curve, from (recall 0, precision 1) like sklearn's closing point. */
export function prCurve(y: readonly Label[], scores: readonly number[]): PrPoint[] {
  const P = y.filter((v) => v === 1).length;
  return [
    { precision: 1, recall: 0, threshold: null },
    ...sweep(y, scores).map((s) => ({ precision: ratio(s.tp, s.tp + s.fp), recall: ratio(s.tp, P), threshold: s.threshold })),
  ];
}

/** Area under the ROC curve by the trapezoid rule. */
export function rocAuc(points: readonly RocPoint[]): number {
  let auc = 0;
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1]!,
      b = points[i]!;
    auc += ((b.fpr - a.fpr) * (a.tpr + b.tpr)) / 2;
  }
  return auc;
}

/** Per-row records for DVC's confusion template. */
export function confusionRows(y: readonly Label[], pred: readonly Label[]): { actual: Label; predicted: Label }[] {
  return y.map((actual, i) => ({ actual, predicted: pred[i]! }));
}
