import type { CleaningArtifacts } from './clean.js';
import { readJson } from './atomic-write.js';
import type { FeatureSchema } from './features.js';
import { loadModelFile } from './model.js';
import type { ModelBundle } from './predict.js';
import type { ModelRegistry, ModelVersion, RegistryStage } from './registry.js';

export type VersionRef = { readonly version: number } | { readonly stage: RegistryStage };

export function resolveVersion(registry: ModelRegistry, ref: VersionRef): ModelVersion {
  if ('version' in ref) return registry.get(ref.version);
  const v = registry.inStage(ref.stage);
  if (!v) {
    const hint = registry.list().length === 0 ? 'the registry is empty: run the pipeline (npx lockstep repro) first' : 'see: leads registry list';
    throw new Error(`no model version in ${ref.stage} (${hint})`);
  }
  return v;
}

/** A version's model with the cleaning artifacts and feature schema it was trained with. */
export function loadBundle(registry: ModelRegistry, v: ModelVersion): ModelBundle {
  return {
    model: loadModelFile(registry.filePath(v, 'model')),
    cleaning: readJson<CleaningArtifacts>(registry.filePath(v, 'cleaning')),
    features: readJson<FeatureSchema>(registry.filePath(v, 'features')),
  };
}
