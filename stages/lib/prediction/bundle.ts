import type { CleaningArtifacts } from '../data/clean.js';
import { readJson } from '../stage-files.js';
import type { FeatureSchema } from '../data/features.js';
import { loadModelFile } from '../models/model.js';
import type { ModelBundle } from './predict.js';
import { ModelRegistry, type ModelVersion, type RegistryStage } from '../registry/registry.js';
import { describeSync, syncWithWorkspace } from '../registry/workspace-sync.js';

/**
 * Which model a command uses: the one the workspace's select outputs name (the
 * default), a registry version by number, or whatever a registry stage holds.
 */
export type VersionRef = { readonly workspace: true } | { readonly version: number } | { readonly stage: RegistryStage };

export const WORKSPACE: VersionRef = { workspace: true };

/**
 * The registry version a reference means now. The workspace's model is
 * registered first if need be (see workspace-sync.ts), so it always has a
 * version number; `note` hears about a registration.
 */
export async function resolveVersion(root: string, ref: VersionRef, note: (line: string) => void = () => undefined): Promise<ModelVersion> {
  const registry = new ModelRegistry(root);
  if ('workspace' in ref) {
    const sync = await syncWithWorkspace(root);
    const said = describeSync(sync);
    if (said) note(said);
    if (!sync.registration)
      throw new Error('the workspace has no selected model yet: run the pipeline first (lockstep repro), or pull its outputs (lockstep pull)');
    return sync.registration.version;
  }
  if ('version' in ref) return registry.get(ref.version);
  const v = registry.inStage(ref.stage);
  if (!v) {
    const hint = registry.list().length === 0 ? 'the registry is empty: run the pipeline (lockstep repro) first' : 'see: leads registry list';
    throw new Error(`no model version in ${ref.stage} (${hint})`);
  }
  return v;
}

export function describeRef(ref: VersionRef): string {
  if ('workspace' in ref) return "the workspace's selected model";
  return 'version' in ref ? `version ${ref.version}` : `the ${ref.stage} stage`;
}

/** A version's model with the cleaning artifacts and feature schema it was trained with. */
export function loadBundle(registry: ModelRegistry, v: ModelVersion): ModelBundle {
  return {
    model: loadModelFile(registry.filePath(v, 'model')),
    cleaning: readJson<CleaningArtifacts>(registry.filePath(v, 'cleaning')),
    features: readJson<FeatureSchema>(registry.filePath(v, 'features')),
  };
}
