import { loadBundle, resolveVersion, type VersionRef } from '../lib/bundle.js';
import type { ModelBundle } from '../lib/predict.js';
import { ModelRegistry, type ModelVersion } from '../lib/registry.js';

export interface LoadedModel {
  readonly version: ModelVersion;
  readonly bundle: ModelBundle;
}

/**
 * The model the service answers with. A request takes `current` once, at its
 * start, and keeps that object to the end; `reload` builds the new one fully
 * before swapping the reference, so an in-flight request never sees half a
 * model and none is dropped.
 */
export class ModelHolder {
  private loaded: LoadedModel;
  private reloading: Promise<{ changed: boolean; version: number }> | undefined;

  private constructor(private readonly root: string, private readonly ref: VersionRef, first: LoadedModel) {
    this.loaded = first;
  }

  static open(root: string, ref: VersionRef): ModelHolder {
    return new ModelHolder(root, ref, ModelHolder.load(root, ref));
  }

  private static load(root: string, ref: VersionRef): LoadedModel {
    const registry = new ModelRegistry(root);
    const version = resolveVersion(registry, ref);
    return { version, bundle: loadBundle(registry, version) };
  }

  get current(): LoadedModel {
    return this.loaded;
  }

  /** Which version the service follows: a pinned number, or whatever is in a registry stage. */
  get following(): string {
    return 'version' in this.ref ? `version ${this.ref.version}` : `the ${this.ref.stage} stage`;
  }

  /** Pick up what the registry now has for our reference; concurrent calls share one load. */
  reload(): Promise<{ changed: boolean; version: number }> {
    // `.finally` runs after the assignment, even when loading finishes synchronously.
    this.reloading ??= this.swap().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async swap(): Promise<{ changed: boolean; version: number }> {
    const next = ModelHolder.load(this.root, this.ref);
    const changed = next.version.version !== this.loaded.version.version || next.version.model_md5 !== this.loaded.version.model_md5;
    if (changed) this.loaded = next;
    return { changed, version: this.loaded.version.version };
  }
}
