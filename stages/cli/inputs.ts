import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../../runner/api.js';
import { parseCsv, type CsvTable } from '../lib/data/csv.js';
import { loadBundle, resolveVersion, WORKSPACE, type VersionRef } from '../lib/prediction/bundle.js';
import type { ModelBundle } from '../lib/prediction/predict.js';
import { ModelRegistry, parseStage } from '../lib/registry/registry.js';

/** The model options every command that predicts shares. */
export interface ModelOptions {
  readonly version?: number;
  readonly stage?: string;
  readonly workspace?: boolean;
}

/** From --version N, --stage S or --workspace; the workspace's selected model when none is given. */
export function modelChoice(o: ModelOptions): VersionRef {
  const given = [o.version !== undefined, o.stage !== undefined, !!o.workspace].filter(Boolean).length;
  if (given > 1) throw new UserError({ message: 'give one of --version, --stage and --workspace' });
  if (o.version !== undefined) return { version: o.version };
  if (o.stage !== undefined) {
    try {
      return { stage: parseStage(o.stage) };
    } catch (e) {
      throw new UserError({ message: `--stage: ${(e as Error).message}` });
    }
  }
  return WORKSPACE;
}

/** The chosen model's bundle, and how to name it in messages. */
export async function loadChosenModel(root: string, ref: VersionRef, note: (line: string) => void): Promise<{ bundle: ModelBundle; by: string }> {
  const version = await resolveVersion(root, ref, note);
  const label = 'workspace' in ref ? ", the workspace's model" : '';
  return { bundle: loadBundle(new ModelRegistry(root), version), by: `version ${version.version} (${version.name}, ${version.stage}${label})` };
}

/** A CSV file the user named, with one-line errors for a missing, malformed or empty file. */
export function readCsvInput(file: string, label = file): CsvTable {
  let text: string;
  try {
    text = fs.readFileSync(path.resolve(file), 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${label}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  let table: CsvTable;
  try {
    table = parseCsv(text);
  } catch (e) {
    throw new Error(`${label} is not valid CSV: ${(e as Error).message}`);
  }
  if (table.rows.length === 0) throw new Error(`${label} has no data rows`);
  return table;
}
