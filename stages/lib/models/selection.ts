import type { ClassificationMetrics } from './metrics.js';

export interface CandidateSummary {
  readonly name: string;
  readonly test: ClassificationMetrics;
}

/** The candidate with the best test F1 (weighted); ties go to the first name in sort order. */
export function bestCandidate<T extends CandidateSummary>(candidates: readonly T[]): T {
  if (candidates.length === 0) throw new Error('no trained candidates to select from');
  return [...candidates].sort((a, b) => b.test.f1_weighted - a.test.f1_weighted || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))[0]!;
}
