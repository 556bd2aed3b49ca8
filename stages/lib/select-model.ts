import fs from 'node:fs';
import { md5OfBytes } from './checksum.js';
import type { ModelRegistry, ModelVersion } from './registry.js';
import { bestCandidate, decideAgainstProduction, type RegistryDecision } from './selection.js';
import type { ModelMetrics } from './train-model.js';

export interface SelectInput {
  readonly candidates: readonly (ModelMetrics & { readonly name: string; readonly modelText: string })[];
  readonly cleaningText: string;
  readonly featuresText: string;
  readonly dataChecksum: string;
  readonly lockEntry: unknown;
}

export type SelectOutcome =
  | { readonly winner: string; readonly decision: RegistryDecision & { action: 'keep_production' } }
  | { readonly winner: string; readonly decision: RegistryDecision & { action: 'register' }; readonly version: ModelVersion; readonly reused: boolean };

/**
 * Pick the best candidate, compare it with Production, and if it wins put it
 * in Staging (the registry archives the previous Staging version). A model
 * byte-identical to one already registered reuses that version instead of
 * adding a duplicate, so re-running select on the same data is idempotent.
 */
export async function selectAndRegister(registry: ModelRegistry, input: SelectInput): Promise<SelectOutcome> {
  const winner = bestCandidate(input.candidates);
  const decision = decideAgainstProduction(winner, registry.inStage('Production'));
  if (decision.action === 'keep_production') return { winner: winner.name, decision };
  const modelMd5 = md5OfBytes(Buffer.from(winner.modelText));
  const cleaningMd5 = md5OfBytes(Buffer.from(input.cleaningText));
  const existing = registry.list().find((v) => v.model_md5 === modelMd5 && fileMd5(registry.filePath(v, 'cleaning')) === cleaningMd5);
  const version = existing ?? (await registry.register({
    name: winner.name,
    family: winner.family,
    model_md5: modelMd5,
    data_checksum: input.dataChecksum,
    params: winner.best_params,
    metrics: { train: winner.train, test: winner.test },
    lock_entry: input.lockEntry,
    contents: { model: winner.modelText, cleaning: input.cleaningText, features: input.featuresText },
  }));
  const staged = await registry.transition(version.version, 'Staging');
  return { winner: winner.name, decision, version: staged, reused: existing !== undefined };
}

function fileMd5(file: string): string | undefined {
  try {
    return md5OfBytes(fs.readFileSync(file));
  } catch {
    return undefined;
  }
}
