import type { StageContext } from '../runner/api.js';
import { ingest, parseSource } from './lib/data/ingest.js';
import { LAYOUT } from './lib/layout.js';
import { ParamReader } from './lib/params.js';

/** Fetch (or copy) raw_data.csv from ingest.source and verify it against ingest.md5. */
export default async function (ctx: StageContext): Promise<void> {
  const p = ParamReader.of(ctx.params, 'ingest');
  const md5 = p.get('md5').string();
  if (!/^[0-9a-f]{32}$/i.test(md5)) p.get('md5').fail('32 hex digits');
  const source = parseSource(p.get('source').string(), ctx.root);
  const timeoutMs = (p.has('timeout_s') ? p.get('timeout_s').number() : 30) * 1000;
  const { bytes, reused } = await ingest({ source, md5, dest: ctx.resolve(LAYOUT.raw), timeoutMs });
  if (reused) ctx.log(`ingest: ${LAYOUT.raw} already holds the data with md5 ${md5} (${bytes} bytes); nothing fetched`);
  else ctx.log(`ingest: ${bytes} bytes from ${source.kind === 'url' ? source.url : source.path}, md5 ${md5} verified`);
}
