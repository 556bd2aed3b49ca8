import fs from 'node:fs';
import { logisticProba, type LogisticModel } from './logistic.js';
import { mlLogisticProba, type MlLogisticModel } from './ml-logistic.js';
import { xgbProba, type XgbModel } from './xgboost.js';
import { toStableJson, writeOutput } from '../stage-files.js';
import type { Label } from '../data/features.js';

export type Model = LogisticModel | MlLogisticModel | XgbModel;

/** A saved model: what it is, what it expects as input, and how it was chosen. */
export interface ModelFile {
  readonly format: 'lead-model/1';
  readonly name: string;
  readonly features: readonly string[];
  readonly params: Readonly<Record<string, number | string>>;
  readonly model: Model;
}

export async function predictProba(model: Model, X: readonly (readonly number[])[]): Promise<number[]> {
  switch (model.kind) {
    case 'logistic_regression':
      return logisticProba(model, X);
    case 'ml_logistic_regression':
      return mlLogisticProba(model, X);
    case 'xgboost':
      return xgbProba(model, X);
  }
}

/** Class 1 when its probability is above one half, as sklearn's predict. */
export function toLabels(proba: readonly number[]): Label[] {
  return proba.map((p) => (p > 0.5 ? 1 : 0));
}

export function saveModelFile(file: string, m: ModelFile): void {
  writeOutput(file, toStableJson(m));
}

export function loadModelFile(file: string): ModelFile {
  let m: ModelFile;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as ModelFile;
  } catch (e) {
    throw new Error(`cannot read model file ${file}: ${(e as Error).message}`);
  }
  if (m?.format !== 'lead-model/1' || !Array.isArray(m.features)) throw new Error(`${file} is not a lead model file`);
  const k = (m.model as { kind?: unknown })?.kind;
  if (k !== 'logistic_regression' && k !== 'ml_logistic_regression' && k !== 'xgboost') throw new Error(`${file}: unknown model kind ${JSON.stringify(k)}`);
  return m;
}
