import fs from 'node:fs';
import path from 'node:path';
import { formatCsv, type CsvCell } from '../lib/csv.js';
import { modelChoice, loadChosenModel, readCsvInput, versionNumber } from './inputs.js';
import { predictRows, type PredictMode } from '../lib/predict.js';
import { ModelRegistry, parseStage, type ModelVersion } from '../lib/registry.js';
import { RunStore, type RunRecord } from '../lib/tracking.js';
import { optionString, parseArgs, UsageError, type ParsedArgs } from './args.js';

/** `leads`: the lead example's own commands (runs, registry, predict), kept out of the engine's CLI. */

const USAGE = `usage:
  leads runs [list] [--json]
  leads runs show ID [--json]
  leads registry [list] [--json]
  leads registry show VERSION [--json]
  leads registry promote VERSION --to Production
  leads predict --input FILE [--output FILE] [--features] [--version N | --stage Staging|Production | --workspace]
  leads serve [--port 8080] [--host 127.0.0.1] [--version N | --stage Staging|Production] [--quiet] [--body-limit BYTES] [--timeout-ms MS]
  leads drift --input NEW.csv [--features] [--reference FILE] [--output-dir DIR] [--workspace | --version N | --stage S]`;

/** Exit codes: 1 for a failure, 2 for a command line that cannot be run. */
class Failure extends Error {}

function findRoot(from: string): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'pipeline.yaml'))) return dir;
    if (path.dirname(dir) === dir) throw new Failure('not inside a Lockstep project (no pipeline.yaml here or above)');
  }
}

const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : s + '\n');
const fmt = (x: number | undefined): string => (x === undefined ? '-' : x.toFixed(4));

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

function runs(root: string, args: ParsedArgs): void {
  const [sub = 'list', id, ...extra] = args.positionals;
  const json = args.options.has('json');
  const store = new RunStore(root);
  if (sub === 'list' && id === undefined) {
    const list = store.list();
    if (json) return out(JSON.stringify(list, null, 2));
    if (list.length === 0) return out('no runs yet (run the pipeline: npx lockstep repro)');
    return out(table(['ID', 'MODEL', 'TEST ACC', 'TEST F1', 'TEST F1(W)', 'GIT', 'STARTED'], list.map((r: RunRecord) => [
      r.id, r.model, fmt(r.metrics.test.accuracy), fmt(r.metrics.test.f1), fmt(r.metrics.test.f1_weighted),
      r.git ? r.git.commit.slice(0, 8) + (r.git.dirty ? '+' : '') : '-', r.started_at,
    ])));
  }
  if (sub === 'show' && id !== undefined && extra.length === 0) {
    const r = store.get(id);
    return out(JSON.stringify(r, null, 2));
  }
  throw new UsageError(sub === 'show' ? 'runs show needs one run ID' : `unknown runs command '${sub}'`);
}

async function registry(root: string, args: ParsedArgs): Promise<void> {
  const [sub = 'list', v, ...extra] = args.positionals;
  const reg = new ModelRegistry(root);
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  if (sub === 'list' && v === undefined) {
    const list = reg.list();
    if (args.options.has('json')) return out(JSON.stringify(list, null, 2));
    if (list.length === 0) return out('the registry is empty (run the pipeline: npx lockstep repro)');
    return out(table(['VERSION', 'STAGE', 'MODEL', 'TEST ACC', 'TEST F1(W)', 'CREATED'], list.map((x: ModelVersion) => [
      String(x.version), x.stage, x.name, fmt(x.metrics.test.accuracy), fmt(x.metrics.test.f1_weighted), x.created_at,
    ])));
  }
  if (sub === 'show') return out(JSON.stringify(reg.get(versionNumber(v)), null, 2));
  if (sub === 'promote') {
    const to = optionString(args, 'to');
    if (!to) throw new UsageError('registry promote needs --to Production');
    const stage = parseStage(to);
    const moved = await reg.transition(versionNumber(v), stage, stage === 'Production' ? { requireFrom: 'Staging' } : {});
    return out(`version ${moved.version} (${moved.name}) is now in ${moved.stage}`);
  }
  throw new UsageError(`unknown registry command '${sub}'`);
}

async function predict(root: string, args: ParsedArgs): Promise<void> {
  if (args.positionals.length) throw new UsageError(`unexpected argument '${args.positionals[0]}'`);
  const input = optionString(args, 'input');
  if (!input) throw new UsageError('predict needs --input FILE');
  const choice = modelChoice(args);
  const mode: PredictMode = args.options.has('features') ? 'features' : 'raw';
  let table;
  let bundle;
  let by: string;
  try {
    table = readCsvInput(input);
    ({ bundle, by } = loadChosenModel(root, choice));
  } catch (e) {
    throw new Failure((e as Error).message);
  }
  const outcome = await predictRows(table.rows, { mode, bundle });
  if (!outcome.ok) {
    for (const e of outcome.errors.slice(0, 20)) process.stderr.write(`${input}: row ${e.row}: ${e.message}\n`);
    if (outcome.errors.length > 20) process.stderr.write(`… and ${outcome.errors.length - 20} more rows with errors\n`);
    const hint = mode === 'raw' ? ' (rows in the 12-column feature form need --features)' : ' (raw_data.csv rows need no --features)';
    throw new Failure(`${outcome.errors.length} of ${table.rows.length} rows cannot be predicted; nothing written${hint}`);
  }
  const rows = table.rows.map((r, i): Record<string, CsvCell> => ({ ...r, ...outcome.predictions[i]! }));
  const csv = formatCsv([...table.columns.filter((c) => c !== 'prediction' && c !== 'probability'), 'prediction', 'probability'], rows);
  const output = optionString(args, 'output');
  if (output) {
    fs.writeFileSync(path.resolve(output), csv);
    process.stderr.write(`${table.rows.length} predictions by ${by} written to ${output}\n`);
  } else process.stdout.write(csv);
}

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      out(USAGE);
      return command === undefined ? 2 : 0;
    }
    const root = findRoot(process.cwd());
    switch (command) {
      case 'runs': runs(root, parseArgs(rest, { flags: ['json'], values: [] })); return 0;
      case 'registry': await registry(root, parseArgs(rest, { flags: ['json'], values: ['to'] })); return 0;
      case 'predict': await predict(root, parseArgs(rest, { flags: ['features', 'workspace'], values: ['input', 'output', 'version', 'stage'] })); return 0;
      case 'drift': {
        const { drift } = await import('../drift/drift-command.js');
        return drift(root, parseArgs(rest, { flags: ['features', 'workspace'], values: ['input', 'reference', 'output-dir', 'version', 'stage'] }));
      }
      case 'serve': {
        const { serve } = await import('../serve/serve-command.js');
        await serve(root, parseArgs(rest, { flags: ['quiet'], values: ['port', 'host', 'version', 'stage', 'body-limit', 'timeout-ms'] }), (m) => new Failure(m));
        return 0;
      }
      default: throw new UsageError(`unknown command '${command}'`);
    }
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`leads: error: ${msg}\n`);
    if (e instanceof UsageError) process.stderr.write(`${USAGE}\n`);
    if (process.env.LEADS_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
