import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { contentHash } from '../../runner/api.js';
import YAML from 'yaml';
import type { ParamValue, StageContext } from '../../runner/module-contract.js';
import { formatCsv } from '../../stages/lib/data/csv.js';
import { Prng } from '../../stages/lib/prng.js';
import { RAW_COLUMNS } from '../../stages/lib/data/schema.js';

export const REPO = path.resolve(import.meta.dirname, '..', '..');
const SHARED_DATA = path.resolve(REPO, '../shared/data');
export const RAW_REAL = path.join(SHARED_DATA, 'raw_data.csv');
export const VALIDATOR_X = path.join(SHARED_DATA, 'validator', 'X_test.csv');
export const VALIDATOR_Y = path.join(SHARED_DATA, 'validator', 'y_test.csv');
export const HAS_REAL_DATA = fs.existsSync(RAW_REAL) && fs.existsSync(VALIDATOR_X);

export function tempDir(prefix = 'leads-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** The repository's params.yaml, parsed: tests run with the shipped defaults. */
export function repoParams(): Record<string, ParamValue> {
  return YAML.parse(fs.readFileSync(path.join(REPO, 'params.yaml'), 'utf8')) as Record<string, ParamValue>;
}

/** A StageContext as the engine builds it, for calling a stage module directly. */
export function stageContext(root: string, stage: string, params: Record<string, ParamValue>, logs: string[] = []): StageContext {
  return {
    stage,
    root,
    wdir: root,
    params,
    deps: [],
    outs: [],
    metrics: [],
    plots: [],
    resolve: (p) => path.resolve(root, p),
    log: (m) => void logs.push(m),
    contentHash,
  };
}

export type RawRow = Record<(typeof RAW_COLUMNS)[number], string>;

/**
 * Synthetic raw rows in raw_data.csv's shape. The label depends on purchases,
 * n_visits and the customer group, so a model can learn something; a few rows
 * fall outside January, lack a label or a customer code, or are not signups.
 */
export function syntheticRaw(n: number, seed: number): RawRow[] {
  const rng = new Prng(seed);
  const sources = ['signup', 'signup', 'li', 'fb', 'organic'];
  return Array.from({ length: n }, (_, i) => {
    const purchases = rng.int(0, 10);
    const visits = rng.int(1, 25);
    const group = rng.int(1, 9);
    const onboarding = rng.next() < 0.5;
    const z = 0.6 * (purchases - 5) + 0.15 * (visits - 9) + (group >= 5 ? 0.8 : -0.8) + (onboarding ? 0.5 : 0) + (rng.next() - 0.5) * 2;
    const month = i % 17 === 0 ? '02' : '01';
    return {
      lead_id: String(i),
      lead_indicator: i % 23 === 5 ? '' : z > 0 ? '1' : '0',
      date_part: `2024-${month}-${rng.int(1, 28)}`,
      is_active: String(rng.int(0, 1)),
      marketing_consent: 'true',
      first_booking: '2024-01-25',
      existing_customer: 'false',
      last_seen: '2024-01-13',
      source: sources[rng.int(0, sources.length - 1)]!,
      domain: '.dk',
      country: 'DK',
      visited_learn_more_before_booking: String(rng.int(0, 9)),
      visited_faq: String(rng.int(0, 9)),
      purchases: i % 31 === 7 ? '' : String(purchases),
      time_spent: String(100 + (rng.next() - 0.5) * 40),
      customer_group: String(group),
      onboarding: onboarding ? 'True' : 'False',
      customer_code: i % 11 === 0 ? '' : `C${rng.int(0, 3)}`,
      n_visits: String(visits),
    };
  });
}

export function rawCsv(rows: readonly RawRow[]): string {
  return formatCsv(RAW_COLUMNS, rows);
}
