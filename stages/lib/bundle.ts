import type { CleaningArtifacts } from './clean.js';
import { readJson } from './atomic-write.js';
import type { FeatureSchema } from './features.js';
import { loadModelFile } from './model.js';
import type { ModelBundle } from './predict.js';
import type { ModelRegistry, ModelVersion, RegistryStage } from './registry.js';
import fs from 'node:fs';
import path from 'node:path';
import { LAYOUT } from './layout.js';

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

/**
 * The model the pipeline's outputs in the workspace select (data/metrics/selected.json),
 * with the cleaning artifacts and schema beside it: what a build produced or
 * restored from the cache, whether or not this machine's registry has it.
 */
export function loadWorkspaceBundle(root: string): { bundle: ModelBundle; name: string } {
  const need = (rel: string) => {
    const abs = path.join(root, rel);
    if (!fs.existsSync(abs)) throw new Error(`${rel} is missing: run the pipeline (npx lockstep repro, or pull its outputs) first`);
    return abs;
  };
  const selected = readJson<{ model?: unknown }>(need(LAYOUT.selected));
  if (typeof selected.model !== 'string') throw new Error(`${LAYOUT.selected} names no model`);
  return {
    name: selected.model,
    bundle: {
      model: loadModelFile(need(LAYOUT.model(selected.model))),
      cleaning: readJson<CleaningArtifacts>(need(LAYOUT.cleanArtifacts)),
      features: readJson<FeatureSchema>(need(LAYOUT.featureSchema)),
    },
  };
}
