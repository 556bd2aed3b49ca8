import fs from 'node:fs';
import path from 'node:path';
import { withFileLock, writeFileAtomic } from '../../../runner/api.js';
import { readJson, toStableJson } from '../stage-files.js';
import type { ClassificationMetrics } from '../models/metrics.js';

const REGISTRY_DIR = 'registry';
const REGISTRY_STAGES = ['None', 'Staging', 'Production', 'Archived'] as const;
export type RegistryStage = (typeof REGISTRY_STAGES)[number];

/** The files a version needs to predict from raw rows, copied into the version's own folder. */
export interface VersionFiles {
  readonly model: string;
  readonly cleaning: string;
  readonly features: string;
}

export interface ModelVersion {
  readonly version: number;
  readonly name: string;
  readonly family: string;
  readonly stage: RegistryStage;
  readonly created_at: string;
  readonly model_md5: string;
  readonly data_checksum: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly metrics: { readonly train: ClassificationMetrics; readonly test: ClassificationMetrics };
  /**
   * The content hashes (as the Lockstep cache names them) of the version's files: the model can be
   * fetched from the cache by hash even after later runs replaced the workspace's files.
   */
  readonly objects: Readonly<Record<keyof VersionFiles, string>>;
  /** The id of the training run (mlruns/) that produced the model, when its record was found. */
  readonly run_id: string | null;
  /** The pipeline.lock entries of train and select when the version was registered: what produced it. */
  readonly lock_entry: Readonly<Record<string, unknown>>;
  /** Relative to the registry folder: a copy, so a version keeps working when the cache is collected. */
  readonly files: VersionFiles;
  readonly history: readonly { readonly stage: RegistryStage; readonly at: string }[];
}

interface RegistryIndex {
  readonly format: 'lead-registry/2';
  readonly versions: readonly ModelVersion[];
}

/** What registering a version is given: its facts as the version will record them, and its files' contents. */
export type NewVersion = Pick<ModelVersion, 'name' | 'family' | 'model_md5' | 'data_checksum' | 'params' | 'metrics' | 'objects' | 'run_id' | 'lock_entry'> & {
  /** Contents to store, keyed as VersionFiles. */
  readonly contents: Readonly<Record<keyof VersionFiles, string>>;
};

export function parseStage(text: string): RegistryStage {
  const found = REGISTRY_STAGES.find((s) => s.toLowerCase() === text.toLowerCase());
  if (!found) throw new Error(`unknown stage '${text}' (one of ${REGISTRY_STAGES.join(', ')})`);
  return found;
}

/**
 * The model registry: an index (index.json, rewritten whole by rename, so a
 * crash leaves either the old or the new index) and one folder per version,
 * written before the index names it. Every change happens under a file lock.
 */
export class ModelRegistry {
  readonly dir: string;
  private readonly indexFile: string;

  constructor(
    root: string,
    private readonly now: () => Date = () => new Date(),
    /** How long a change waits for another process's change before giving up (exit 3, naming the holder). */
    private readonly lockWaitMs = 10_000,
  ) {
    this.dir = path.join(root, REGISTRY_DIR);
    this.indexFile = path.join(this.dir, 'index.json');
  }

  list(): readonly ModelVersion[] {
    if (!fs.existsSync(this.indexFile)) return [];
    const idx = readJson<RegistryIndex>(this.indexFile);
    if (idx.format !== 'lead-registry/2') {
      // lead-registry/1 registered from inside select, and its versions do not name cache objects.
      throw new Error(`${this.indexFile} is not a lead registry index this version reads (format ${JSON.stringify(idx.format)}): move the registry/ folder aside; it is rebuilt from the workspace's outputs`);
    }
    return idx.versions;
  }

  get(version: number): ModelVersion {
    const v = this.list().find((x) => x.version === version);
    if (!v) throw new Error(`no model version ${version} in the registry (see: leads registry list)`);
    return v;
  }

  inStage(stage: RegistryStage): ModelVersion | undefined {
    return this.list().find((v) => v.stage === stage);
  }

  filePath(v: ModelVersion, which: keyof VersionFiles): string {
    return path.join(this.dir, v.files[which]);
  }

  /** Add a version in stage None. Files first, index last: an interrupted register leaves no dangling entry. */
  async register(input: NewVersion): Promise<ModelVersion> {
    return this.mutate((versions) => {
      const number = versions.reduce((m, v) => Math.max(m, v.version), 0) + 1;
      const folder = `v${number}`;
      const files: VersionFiles = { model: `${folder}/model.json`, cleaning: `${folder}/cleaning.json`, features: `${folder}/features.json` };
      for (const k of Object.keys(files) as (keyof VersionFiles)[]) writeFileAtomic(path.join(this.dir, files[k]), input.contents[k]);
      const at = this.now().toISOString();
      const { contents: _contents, ...meta } = input;
      const v: ModelVersion = { version: number, ...meta, stage: 'None', created_at: at, files, history: [{ stage: 'None', at }] };
      return { versions: [...versions, v], result: v };
    });
  }

  /**
   * Move a version to a stage. Staging and Production hold one version each:
   * the one there before is archived.
   */
  async transition(version: number, to: RegistryStage, opts: { requireFrom?: RegistryStage } = {}): Promise<ModelVersion> {
    return this.mutate((versions) => {
      const target = versions.find((v) => v.version === version);
      if (!target) throw new Error(`no model version ${version} in the registry (see: leads registry list)`);
      if (opts.requireFrom && target.stage !== opts.requireFrom) {
        throw new Error(`version ${version} is in ${target.stage}; only a ${opts.requireFrom} version can move to ${to}`);
      }
      const at = this.now().toISOString();
      const move = (v: ModelVersion, stage: RegistryStage): ModelVersion => ({ ...v, stage, history: [...v.history, { stage, at }] });
      const exclusive = to === 'Staging' || to === 'Production';
      const next = versions.map((v) => {
        if (v.version === version) return v.stage === to ? v : move(v, to);
        if (exclusive && v.stage === to) return move(v, 'Archived');
        return v;
      });
      return { versions: next, result: next.find((v) => v.version === version)! };
    });
  }

  private async mutate<T>(f: (versions: readonly ModelVersion[]) => { versions: readonly ModelVersion[]; result: T }): Promise<T> {
    fs.mkdirSync(this.dir, { recursive: true });
    return withFileLock(path.join(this.dir, '.lock'), () => {
      const { versions, result } = f(this.list());
      const idx: RegistryIndex = { format: 'lead-registry/2', versions };
      writeFileAtomic(this.indexFile, toStableJson(idx));
      return result;
    }, { label: 'the model registry lock', what: 'a registry change', waitMs: this.lockWaitMs });
  }
}
