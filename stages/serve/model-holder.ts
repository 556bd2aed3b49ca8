import { describeRef, loadBundle, resolveVersion, type VersionRef } from '../lib/prediction/bundle.js';
import type { ModelBundle } from '../lib/prediction/predict.js';
import { ModelRegistry, type ModelVersion } from '../lib/registry/registry.js';

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

  private constructor(
    private readonly root: string,
    private readonly ref: VersionRef,
    first: LoadedModel,
  ) {
    this.loaded = first;
  }

  static async open(root: string, ref: VersionRef, note?: (line: string) => void): Promise<ModelHolder> {
    return new ModelHolder(root, ref, await ModelHolder.load(root, ref, note));
  }

  private static async load(root: string, ref: VersionRef, note?: (line: string) => void): Promise<LoadedModel> {
    const version = await resolveVersion(root, ref, note);
    return { version, bundle: loadBundle(new ModelRegistry(root), version) };
  }

  /** The registry's current record of the loaded version: its stage changes with promotions and archiving. */
  currentRecord(): ModelVersion {
    const v = this.loaded.version;
    return new ModelRegistry(this.root).list().find((x) => x.version === v.version) ?? v;
  }

  get current(): LoadedModel {
    return this.loaded;
  }

  /** Which version the service follows: the workspace's model, a pinned number, or whatever is in a registry stage. */
  get following(): string {
    return describeRef(this.ref);
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
    const next = await ModelHolder.load(this.root, this.ref);
    const changed = next.version.version !== this.loaded.version.version || next.version.model_md5 !== this.loaded.version.model_md5;
    if (changed) this.loaded = next;
    return { changed, version: this.loaded.version.version };
  }
}
