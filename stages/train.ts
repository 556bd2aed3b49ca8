import fs from 'node:fs';
import type { StageContext } from '../runner/api.js';
import { toStableJson, writeOutput } from './lib/stage-files.js';
import { md5OfBytes } from './lib/data/checksum.js';
import { readDataset } from './lib/data/dataset.js';
import { LAYOUT } from './lib/layout.js';
import { saveModelFile } from './lib/models/model.js';
import { readTrainParams } from './lib/models/train-config.js';
import { trainModel } from './lib/models/training.js';
import { gitRevision, newRunId, type Artifact, type RunRecord } from './lib/registry/run-record.js';

/**
 * Every model family in train.models: a randomized search over k-fold CV, then metrics, plots and a run
 * record. The record is an output (data/runs/NAME.json) rather than a write into mlruns/, so a run restored
 * from the cache, or made in an experiment's temporary copy, keeps its record; `leads` files it in mlruns/.
 */
export default async function (ctx: StageContext): Promise<void> {
  const { search, models } = readTrainParams(ctx.params);
  const train = readDataset(ctx.resolve(LAYOUT.trainSet));
  const test = readDataset(ctx.resolve(LAYOUT.testSet));
  const dataChecksum = md5OfBytes(Buffer.concat([fs.readFileSync(ctx.resolve(LAYOUT.trainSet)), fs.readFileSync(ctx.resolve(LAYOUT.testSet))]));
  const git = gitRevision(ctx.root);
  // Models that are no longer configured must not linger as candidates for select.
  fs.rmSync(ctx.resolve(LAYOUT.modelsDir), { recursive: true, force: true });
  fs.rmSync(ctx.resolve(LAYOUT.runsDir), { recursive: true, force: true });
  for (const spec of models) {
    const started = new Date();
    const t0 = performance.now();
    const trained = await trainModel(spec, train, test, search);
    const artifacts = {
      model: LAYOUT.model(spec.name),
      metrics: LAYOUT.metrics(spec.name),
      roc: LAYOUT.roc(spec.name),
      pr: LAYOUT.pr(spec.name),
      confusion: LAYOUT.confusion(spec.name),
    };
    saveModelFile(ctx.resolve(artifacts.model), trained.file);
    writeOutput(ctx.resolve(artifacts.metrics), toStableJson(trained.metrics));
    writeOutput(ctx.resolve(artifacts.roc), toStableJson(trained.plots.roc));
    writeOutput(ctx.resolve(artifacts.pr), toStableJson(trained.plots.pr));
    writeOutput(ctx.resolve(artifacts.confusion), toStableJson(trained.plots.confusion));
    const ms = performance.now() - t0;
    const hashed: Record<string, Artifact> = {};
    for (const [k, rel] of Object.entries(artifacts)) hashed[k] = { path: rel, hash: await ctx.contentHash(fs.readFileSync(ctx.resolve(rel))) };
    const run: RunRecord = {
      id: newRunId(started),
      stage: ctx.stage,
      model: spec.name,
      family: trained.metrics.family,
      started_at: started.toISOString(),
      finished_at: new Date().toISOString(),
      duration_ms: Math.round(ms),
      git,
      data_checksum: dataChecksum,
      params: { search, n_iter: spec.nIter, space: spec.space, best: trained.metrics.best_params },
      metrics: { train: trained.metrics.train, test: trained.metrics.test, cv_score: trained.metrics.search.best_score },
      artifacts: hashed,
    };
    writeOutput(ctx.resolve(LAYOUT.run(spec.name)), toStableJson(run));
    const t = trained.metrics.test;
    ctx.log(
      `train ${spec.name}: cv ${search.scoring} ${trained.metrics.search.best_score.toFixed(4)}, test accuracy ${t.accuracy.toFixed(4)}, ` +
        `F1 ${t.f1.toFixed(4)}, F1 (weighted) ${t.f1_weighted.toFixed(4)} in ${(ms / 1000).toFixed(1)} s; run ${run.id}`,
    );
  }
}
