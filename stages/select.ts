import fs from 'node:fs';
import type { StageContext } from '../runner/module-contract.js';
import { readJson, toStableJson, writeFileAtomic } from './lib/atomic-write.js';
import { md5OfBytes } from './lib/checksum.js';
import { LAYOUT } from './lib/layout.js';
import { readLockEntry } from './lib/lock-entry.js';
import { loadModelFile } from './lib/model.js';
import { ModelRegistry } from './lib/registry.js';
import { selectAndRegister } from './lib/select-model.js';
import type { ModelMetrics } from './lib/train-model.js';

/** Best test F1 (weighted) among train's models; registered and staged unless Production is as good. */
export default async function (ctx: StageContext): Promise<void> {
  const names = fs.readdirSync(ctx.resolve(LAYOUT.modelsDir)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
  const candidates = names.map((name) => {
    loadModelFile(ctx.resolve(LAYOUT.model(name))); // fail here, not in predict, if a file is not a model
    return {
      ...readJson<ModelMetrics>(ctx.resolve(LAYOUT.metrics(name))),
      name,
      modelText: fs.readFileSync(ctx.resolve(LAYOUT.model(name)), 'utf8'),
    };
  });
  const dataChecksum = md5OfBytes(Buffer.concat([fs.readFileSync(ctx.resolve(LAYOUT.trainSet)), fs.readFileSync(ctx.resolve(LAYOUT.testSet))]));
  const outcome = await selectAndRegister(new ModelRegistry(ctx.root), {
    candidates,
    cleaningText: fs.readFileSync(ctx.resolve(LAYOUT.cleanArtifacts), 'utf8'),
    featuresText: fs.readFileSync(ctx.resolve(LAYOUT.featureSchema), 'utf8'),
    dataChecksum,
    lockEntry: { train: readLockEntry(ctx.resolve(LAYOUT.lock), 'train') },
  });
  const winner = candidates.find((c) => c.name === outcome.winner)!;
  // Only what follows from data and params, so the file is reproducible; registry details go to the log.
  writeFileAtomic(ctx.resolve(LAYOUT.selected), toStableJson({
    model: winner.name,
    family: winner.family,
    best_params: winner.best_params,
    train: winner.train,
    test: winner.test,
    test_roc_auc: winner.test_roc_auc,
  }));
  const reg = outcome.decision.action === 'register' && 'version' in outcome
    ? `${outcome.reused ? 'already registered as' : 'registered as'} version ${outcome.version.version}, now in Staging (${outcome.decision.reason})`
    : `not registered: ${outcome.decision.reason}`;
  ctx.log(`select: ${winner.name} (test F1 weighted ${winner.test.f1_weighted.toFixed(4)}); ${reg}`);
}
