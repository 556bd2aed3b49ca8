import fs from 'node:fs';
import path from 'node:path';
import { featureRowToVector, rawRowToFeatures, type ModelBundle } from '../lib/prediction/predict.js';
import { DEFAULT_DRIFT_PARAMS, driftReport, featureTable, type DriftParams } from '../lib/drift/report.js';
import { LAYOUT } from '../lib/layout.js';
import { readParams, renderTable, UserError, writeFileAtomic, type Io } from '../../runner/api.js';
import type { VersionRef } from '../lib/prediction/bundle.js';
import { loadChosenModel, readCsvInput } from '../cli/inputs.js';

export interface DriftArgs {
  readonly ref: VersionRef;
  readonly input: string;
  readonly features: boolean;
  readonly reference?: string;
  readonly outputDir: string;
}
import { driftHtml } from './report-html.js';

/** The `drift:` section of params.yaml, checked; defaults for what it leaves out. */
function driftParams(root: string): DriftParams {
  try {
    return readDriftParams(root);
  } catch (e) {
    // A mistake in the user's params file is bad input (exit 2), not a failed check.
    if (e instanceof UserError) throw e;
    throw new UserError({ message: (e as Error).message });
  }
}

function readDriftParams(root: string): DriftParams {
  // Read as the engine reads params (one parser, one error format), not by hand.
  const raw = (readParams(root)?.drift ?? {}) as Record<string, unknown>;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('params.yaml: drift must be a mapping');
  const known = Object.keys(DEFAULT_DRIFT_PARAMS);
  for (const k of Object.keys(raw)) if (!known.includes(k)) throw new Error(`params.yaml: unknown key drift.${k} (known: ${known.join(', ')})`);
  const out: Record<string, number> = { ...DEFAULT_DRIFT_PARAMS };
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (k !== 'bins' && k !== 'psi_threshold' && v > 1) || (k === 'bins' && (!Number.isInteger(v) || v < 2))) {
      throw new Error(`params.yaml: drift.${k} must be ${k === 'bins' ? 'a whole number of at least 2' : k === 'psi_threshold' ? 'a non-negative number' : 'a number from 0 to 1'}, got ${JSON.stringify(v)}`);
    }
    out[k] = v;
  }
  return out as unknown as DriftParams;
}

/** Rows as model feature vectors; rows that cannot be transformed are counted and reported, not silently used. */
function vectors(rows: readonly Record<string, unknown>[], bundle: ModelBundle, features: boolean, file: string, warn: (m: string) => void): number[][] {
  const out: number[][] = [];
  const bad: string[] = [];
  rows.forEach((row, i) => {
    const { lead_indicator: _label, ...rest } = row;
    const r = features ? featureRowToVector(rest, bundle) : rawRowToFeatures(row, bundle);
    if ('problems' in r) bad.push(`row ${i + 1}: ${r.problems.join('; ')}`);
    else out.push(r.features);
  });
  if (bad.length === rows.length) throw new Error(`no row of ${file} could be read: ${bad[0]}${features ? '' : ' (rows in the 12-column feature form need --features)'}`);
  if (bad.length) warn(`${bad.length} of ${rows.length} rows of ${file} left out (${bad[0]}${bad.length > 1 ? '; …' : ''})`);
  return out;
}

/**
 * `leads drift`: the new batch, cleaned with the model's saved artifacts,
 * against the training split the pipeline produced (data/features/train.csv),
 * feature by feature. Writes report.json and report.html; returns 3 when more
 * features drifted than drift.max_drifted_share allows (a CI gate).
 */
export async function drift(root: string, args: DriftArgs, io: Io): Promise<number> {
  const { input } = args;
  const params = driftParams(root);
  const { bundle } = await loadChosenModel(root, args.ref, (l) => io.err(`leads: ${l}`));
  const refFile = path.resolve(root, args.reference ?? LAYOUT.trainSet);
  const warn = (m: string) => io.err(`leads: warning: ${m}`);
  const reference = readCsvInput(refFile, `reference ${refFile}`);
  const current = readCsvInput(input, `input ${input}`);
  const report = driftReport(
    featureTable(vectors(reference.rows, bundle, true, refFile, warn), bundle.features),
    featureTable(vectors(current.rows, bundle, args.features, input, warn), bundle.features),
    params,
  );
  const outDir = path.resolve(args.outputDir);
  fs.mkdirSync(outDir, { recursive: true });
  writeFileAtomic(path.join(outDir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  writeFileAtomic(path.join(outDir, 'report.html'), driftHtml(report, input));
  io.out(renderTable(['STATUS', 'FEATURE', 'TEST', 'STATISTIC', 'P-VALUE', 'PSI'], report.features.map((f) => [
    f.drifted ? 'DRIFT' : 'ok', f.feature, f.test, f.statistic.toFixed(4), f.p_value.toExponential(2), f.psi.toFixed(4),
  ])));
  const summary = `${report.drifted.length} of ${report.features.length} features drifted${report.drifted.length ? ` (${report.drifted.join(', ')})` : ''}; allowed share ${params.max_drifted_share}`;
  io.out(`${report.failed ? 'FAILED' : 'passed'}: ${summary}; report in ${path.relative(process.cwd(), outDir) || '.'}/report.html`);
  return report.failed ? 3 : 0;
}
