import fs from 'node:fs';
import path from 'node:path';
import { parseCsv, type CsvTable } from '../lib/csv.js';
import { loadBundle, loadWorkspaceBundle, resolveVersion, type VersionRef } from '../lib/bundle.js';
import type { ModelBundle } from '../lib/predict.js';
import { ModelRegistry, parseStage } from '../lib/registry.js';
import { optionString, UsageError, type ParsedArgs } from './args.js';

/** Which model a command uses: a registry version (by number or stage), or the workspace's selected one. */
export type ModelChoice = { readonly kind: 'registry'; readonly ref: VersionRef } | { readonly kind: 'workspace' };

export function versionNumber(text: string | undefined): number {
  const n = Number(text);
  if (text === undefined || !Number.isInteger(n) || n < 1) throw new UsageError(`a version is a positive integer, got '${text ?? ''}'`);
  return n;
}

/** From --version N, --stage S or (where allowed) --workspace; Staging when none is given. */
export function modelChoice(args: ParsedArgs, allowWorkspace = true): ModelChoice {
  const versionText = optionString(args, 'version');
  const stageText = optionString(args, 'stage');
  const workspace = allowWorkspace && args.options.has('workspace');
  const given = [versionText !== undefined, stageText !== undefined, workspace].filter(Boolean).length;
  if (given > 1) throw new UsageError(allowWorkspace ? 'give one of --version, --stage and --workspace' : 'give --version or --stage, not both');
  if (workspace) return { kind: 'workspace' };
  return { kind: 'registry', ref: versionText !== undefined ? { version: versionNumber(versionText) } : { stage: parseStage(stageText ?? 'Staging') } };
}

/** The chosen model's bundle, and how to name it in messages. */
export function loadChosenModel(root: string, choice: ModelChoice): { bundle: ModelBundle; by: string } {
  if (choice.kind === 'workspace') {
    const w = loadWorkspaceBundle(root);
    return { bundle: w.bundle, by: `the workspace's selected model (${w.name})` };
  }
  const reg = new ModelRegistry(root);
  const version = resolveVersion(reg, choice.ref);
  return { bundle: loadBundle(reg, version), by: `version ${version.version} (${version.name}, ${version.stage})` };
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
