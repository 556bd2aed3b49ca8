import type { ClassificationMetrics } from './metrics.js';
import type { ModelVersion } from '../registry/registry.js';

export interface CandidateSummary {
  readonly name: string;
  readonly test: ClassificationMetrics;
}

/** The candidate with the best test F1 (weighted); ties go to the first name in sort order. */
export function bestCandidate<T extends CandidateSummary>(candidates: readonly T[]): T {
  if (candidates.length === 0) throw new Error('no trained candidates to select from');
  return [...candidates].sort((a, b) => b.test.f1_weighted - a.test.f1_weighted || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))[0]!;
}

export type RegistryDecision =
  | { readonly action: 'register'; readonly reason: string }
  | { readonly action: 'keep_production'; readonly reason: string };

/** Promote the winner unless Production already scores at least as well on test F1 (weighted). */
export function decideAgainstProduction(winner: CandidateSummary, production: ModelVersion | undefined): RegistryDecision {
  if (!production) return { action: 'register', reason: 'no model in Production' };
  const ours = winner.test.f1_weighted;
  const theirs = production.metrics.test.f1_weighted;
  return ours > theirs
    ? { action: 'register', reason: `test F1 (weighted) ${ours.toFixed(4)} beats Production v${production.version}'s ${theirs.toFixed(4)}` }
    : { action: 'keep_production', reason: `Production v${production.version} has test F1 (weighted) ${theirs.toFixed(4)} >= ${ours.toFixed(4)}` };
}
