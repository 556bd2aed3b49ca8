import { md5OfBytes } from '../data/checksum.js';
import type { ModelRegistry, ModelVersion, VersionFiles } from './registry.js';
import { decideAgainstProduction, type RegistryDecision } from '../models/selection.js';
import type { ModelMetrics } from '../models/train-model.js';

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
  const decision = decideAgainstProduction({ name: sel.name, test: sel.metrics.test }, registry.inStage('Production'));
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
