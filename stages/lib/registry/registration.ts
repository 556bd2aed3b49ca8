import { md5OfBytes } from '../data/checksum.js';
import type { ModelRegistry, ModelVersion, VersionFiles } from './registry.js';
import type { ClassificationMetrics } from '../models/metrics.js';
import type { ModelMetrics } from '../models/training.js';

/** The model the workspace's select outputs name, with everything a registry version keeps of it. */
export interface Selection {
  readonly name: string;
  readonly metrics: Pick<ModelMetrics, 'family' | 'best_params' | 'train' | 'test'>;
  readonly dataChecksum: string;
  readonly contents: Readonly<Record<keyof VersionFiles, string>>;
  /** Content hashes of `contents`, as the Lockstep cache names them. */
  readonly objects: Readonly<Record<keyof VersionFiles, string>>;
  readonly runId: string | null;
  /** pipeline.lock's entries of the stages that produced the selection. */
  readonly lockEntry: Readonly<Record<string, unknown>>;
}

export type Registration =
  | { readonly kind: 'known'; readonly version: ModelVersion }
  | { readonly kind: 'registered'; readonly version: ModelVersion; readonly decision: RegistryDecision };

/**
 * Make sure the registry holds the workspace's selected model. A version is the
 * model's bytes together with the cleaning artifacts and feature schema it needs,
 * so the same three files always map to the same version (idempotent, and never a
 * duplicate when a run is restored instead of rerun). A new version goes to Staging
 * unless Production already scores at least as well, in which case it is kept in
 * None with the reason.
 */
export async function registerSelection(registry: ModelRegistry, sel: Selection): Promise<Registration> {
  const known = registry.list().find((v) => sameFiles(v, sel));
  if (known) return { kind: 'known', version: known };
  const decision = decideAgainstProduction(sel.metrics.test, registry.inStage('Production'));
  const version = await registry.register({
    name: sel.name,
    family: sel.metrics.family,
    model_md5: md5OfBytes(Buffer.from(sel.contents.model)),
    data_checksum: sel.dataChecksum,
    params: sel.metrics.best_params,
    metrics: { train: sel.metrics.train, test: sel.metrics.test },
    objects: sel.objects,
    run_id: sel.runId,
    lock_entry: sel.lockEntry,
    contents: sel.contents,
  });
  const placed = decision.action === 'register' ? await registry.transition(version.version, 'Staging') : version;
  return { kind: 'registered', version: placed, decision };
}

function sameFiles(v: ModelVersion, sel: Selection): boolean {
  return v.objects.model === sel.objects.model && v.objects.cleaning === sel.objects.cleaning && v.objects.features === sel.objects.features;
}

type RegistryDecision =
  | { readonly action: 'register'; readonly reason: string }
  | { readonly action: 'keep_production'; readonly reason: string };

/** Promote the winner unless Production already scores at least as well on test F1 (weighted). */
function decideAgainstProduction(test: ClassificationMetrics, production: ModelVersion | undefined): RegistryDecision {
  if (!production) return { action: 'register', reason: 'no model in Production' };
  const ours = test.f1_weighted;
  const theirs = production.metrics.test.f1_weighted;
  return ours > theirs
    ? { action: 'register', reason: `test F1 (weighted) ${ours.toFixed(4)} beats Production v${production.version}'s ${theirs.toFixed(4)}` }
    : { action: 'keep_production', reason: `Production v${production.version} has test F1 (weighted) ${theirs.toFixed(4)} >= ${ours.toFixed(4)}` };
}
