/**
 * Which way a metric improves, from its name. Only names we are sure about get
 * a direction: a ★ on "most false negatives" or on a count that is merely
 * large is worse than no ★ at all, so everything else stays undirected.
 */
export type Direction = 'lower' | 'higher';

const LOWER = new Set([
  'loss',
  'error',
  'errors',
  'err',
  'fn',
  'fp',
  'false_negatives',
  'false_positives',
  'fnr',
  'fpr',
  'mae',
  'mse',
  'rmse',
  'mape',
  'logloss',
  'log_loss',
  'brier',
  'perplexity',
  'time',
  'latency',
  'duration',
]);
const HIGHER = new Set([
  'accuracy',
  'acc',
  'f1',
  'fscore',
  'f_score',
  'auc',
  'roc_auc',
  'pr_auc',
  'average_precision',
  'precision',
  'recall',
  'tp',
  'tn',
  'true_positives',
  'true_negatives',
  'tpr',
  'tnr',
  'specificity',
  'sensitivity',
  'r2',
  'score',
  'iou',
  'bleu',
  'ndcg',
]);

/** The last segment of `file:a.b.leaf`. */
function leafOf(key: string): string {
  return key.slice(Math.max(key.lastIndexOf('.'), key.lastIndexOf(':')) + 1).toLowerCase();
}

/**
 * `test.f1_weighted` → higher (its first word is f1), `test_roc_auc` → higher, `train_loss` → lower,
 * `n_iter`, `gamma`, `n` → undefined. A name with words from both lists is undirected.
 */
export function metricDirection(key: string, declared?: ReadonlyMap<string, Direction>): Direction | undefined {
  const fromDecl = declared?.get(key);
  if (fromDecl) return fromDecl;
  const leaf = leafOf(key);
  if (LOWER.has(leaf)) return 'lower';
  if (HIGHER.has(leaf)) return 'higher';
  const words = leaf.split(/[_-]/);
  const lo = words.some((w) => LOWER.has(w));
  const hi = words.some((w) => HIGHER.has(w));
  if (lo === hi) return undefined;
  return lo ? 'lower' : 'higher';
}
