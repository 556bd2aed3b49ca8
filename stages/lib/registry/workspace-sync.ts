import fs from 'node:fs';
import path from 'node:path';
import { contentHash, experiments, lockEntry, readCachedFile, readCachedTree } from '../../../runner/api.js';
import { readJson } from '../stage-files.js';
import { md5OfBytes } from '../data/checksum.js';
import { LAYOUT } from '../layout.js';
import { ModelRegistry, type VersionFiles } from './registry.js';
import { registerSelection, type Registration, type Selection } from './registration.js';
import type { RunRecord } from './run-record.js';
import { RunStore } from './run-store.js';
import type { ModelMetrics } from '../models/training.js';

/**
 * The registry and the run store follow the workspace's outputs, not the history
 * of which stage happened to run: whatever `lockstep repro` did (ran, restored from
 * the cache or a remote, or skipped), the outputs it left are the truth, and this
 * brings mlruns/ and registry/ in line with them. Every `leads` command that reads
 * either calls it first; it is idempotent and cheap when nothing changed.
 */
export interface SyncResult {
  /** Undefined when the workspace has no selection yet (the pipeline never ran here). */
  readonly registration: Registration | undefined;
  readonly runsAdded: number;
}

export async function syncWithWorkspace(root: string): Promise<SyncResult> {
  const runsAdded = await fileRuns(root);
  const selection = await readSelection(root);
  const registration = selection ? await registerSelection(new ModelRegistry(root), selection) : undefined;
  return { registration, runsAdded };
}

/** What to tell the user about a sync, or undefined when it changed nothing. */
export function describeSync(r: SyncResult): string | undefined {
  const reg = r.registration;
  if (reg?.kind !== 'registered') return undefined;
  const v = reg.version;
  return `registry: the workspace's model (${v.name}) registered as version ${v.version}, in ${v.stage} (${reg.decision.reason})`;
}

/** The selection the workspace's select outputs name, or undefined when select has not produced one here. */
async function readSelection(root: string): Promise<Selection | undefined> {
  const abs = (rel: string) => path.join(root, rel);
  if (!fs.existsSync(abs(LAYOUT.selected))) return undefined;
  const selected = readJson<Partial<ModelMetrics> & { model?: unknown }>(abs(LAYOUT.selected));
  if (typeof selected.model !== 'string' || !selected.train || !selected.test) throw new Error(`${LAYOUT.selected} names no model`);
  const need = (rel: string): string => {
    if (!fs.existsSync(abs(rel))) throw new Error(`${rel} is missing: run the pipeline (lockstep repro) or pull its outputs (lockstep pull) first`);
    return fs.readFileSync(abs(rel), 'utf8');
  };
  const contents: Record<keyof VersionFiles, string> = {
    model: need(LAYOUT.model(selected.model)),
    cleaning: need(LAYOUT.cleanArtifacts),
    features: need(LAYOUT.featureSchema),
  };
  const objects = {
    model: await contentHash(contents.model),
    cleaning: await contentHash(contents.cleaning),
    features: await contentHash(contents.features),
  };
  const run = fs.existsSync(abs(LAYOUT.run(selected.model))) ? readJson<RunRecord>(abs(LAYOUT.run(selected.model))) : undefined;
  return {
    name: selected.model,
    metrics: { family: selected.family ?? 'unknown', best_params: selected.best_params ?? {}, train: selected.train, test: selected.test },
    dataChecksum: md5OfBytes(Buffer.concat([Buffer.from(need(LAYOUT.trainSet)), Buffer.from(need(LAYOUT.testSet))])),
    contents,
    objects,
    // The record's model hash tells whether it describes this very model (it does unless outputs were mixed by hand).
    runId: run && run.artifacts.model?.hash === objects.model ? run.id : null,
    lockEntry: { train: lockEntry(root, 'train') ?? null, select: lockEntry(root, 'select') ?? null },
  };
}

/** File the run records of the workspace's train outputs and of every experiment's (read from the cache). */
async function fileRuns(root: string): Promise<number> {
  const store = new RunStore(root);
  let added = 0;
  const dir = path.join(root, LAYOUT.runsDir);
  if (fs.existsSync(dir)) {
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.json')).sort()) {
      if (store.add(readJson<RunRecord>(path.join(dir, f)))) added++;
    }
  }
  for (const exp of experiments(root)) {
    const out = Object.values(exp.outs).flat().find((o) => o.path === LAYOUT.runsDir);
    const tree = out ? await readCachedTree(root, out.hash) : undefined;
    for (const file of tree ?? []) {
      const bytes = await readCachedFile(root, file.hash);
      if (bytes && store.add(JSON.parse(bytes.toString('utf8')) as RunRecord)) added++;
    }
  }
  return added;
}
