import type { StageContext } from '../runner/api.js';
import { toStableJson, writeOutput } from './lib/stage-files.js';
import { cleanRows, cleanRowToCells } from './lib/data/clean.js';
import { readCsv, writeCsv } from './lib/data/csv.js';
import { LAYOUT } from './lib/layout.js';
import { ParamReader } from './lib/params.js';

/** Spec steps 1–9: the cleaned table, its column list, and the artifacts prediction replays. */
export default async function (ctx: StageContext): Promise<void> {
  const p = ParamReader.of(ctx.params, 'clean');
  const { rows, artifacts } = cleanRows(readCsv(ctx.resolve(LAYOUT.raw)).rows, {
    minDate: p.get('min_date').isoDate(),
    maxDate: p.get('max_date').isoDate(),
  });
  writeCsv(ctx.resolve(LAYOUT.cleanTable), artifacts.columns, rows.map(cleanRowToCells));
  writeOutput(ctx.resolve(LAYOUT.cleanArtifacts), toStableJson(artifacts));
  writeOutput(ctx.resolve(LAYOUT.cleanColumns), toStableJson(artifacts.columns));
  const ones = rows.filter((r) => r.lead_indicator === 1).length;
  ctx.log(
    `clean: ${rows.length} rows (${rows.length - ones} zeros, ${ones} ones), dates ${artifacts.date_limits.min_date} .. ${artifacts.date_limits.max_date}`,
  );
}
