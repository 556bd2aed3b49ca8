import fs from 'node:fs';
import path from 'node:path';
import type { ParamValue } from '../../runner/module-contract.js';
import ingest from '../../stages/ingest.js';
import clean from '../../stages/clean.js';
import split from '../../stages/split.js';
import train from '../../stages/train.js';
import select from '../../stages/select.js';
import { stageContext } from './fixtures.js';

const STAGES = { ingest, clean, split, train, select } as const;

/** Run the five stage modules in order in `root`, as the engine would (cwd aside), returning their logs and times. */
export async function runPipeline(root: string, params: Record<string, ParamValue>): Promise<{ logs: string[]; ms: Record<string, number> }> {
  fs.writeFileSync(path.join(root, 'pipeline.yaml'), 'stages: {}\n');
  const logs: string[] = [];
  const ms: Record<string, number> = {};
  for (const [name, fn] of Object.entries(STAGES)) {
    const t = performance.now();
    await fn(stageContext(root, name, params, logs));
    ms[name] = performance.now() - t;
  }
  return { logs, ms };
}

/** Small searches so the synthetic runs take a second or two. */
export function quickTrainParams(params: Record<string, ParamValue>): Record<string, ParamValue> {
  const t = params.train as { [k: string]: ParamValue };
  const models = t.models as { [k: string]: { [k: string]: ParamValue } };
  return {
    ...params,
    train: {
      ...t,
      models: Object.fromEntries(
        Object.entries(models).map(([k, m]) => [
          k,
          { ...m, n_iter: 2, space: { ...(m.space as object), ...(m.family === 'xgboost' ? { n_estimators: 10 } : {}) } },
        ]),
      ),
    },
  };
}
