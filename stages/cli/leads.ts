import fs from 'node:fs';
import path from 'node:path';
import { createProgram, EXIT, processIo, projectRoot, renderTable, UserError, wholeNumber, type Io, type Program } from '../../runner/api.js';
import { formatCsv, type CsvCell } from '../lib/data/csv.js';
import { predictValidRows, type PredictMode } from '../lib/prediction/predict.js';
import { ModelRegistry, parseStage, type ModelVersion, type RegistryStage } from '../lib/registry/registry.js';
import { RunStore } from '../lib/registry/run-store.js';
import type { RunRecord } from '../lib/registry/run-record.js';
import { describeSync, syncWithWorkspace } from '../lib/registry/workspace-sync.js';
import { loadChosenModel, modelChoice, readCsvInput, type ModelOptions } from './inputs.js';

/**
 * `leads`: the lead example's own commands (runs, registry, predict, serve,
 * drift), on the same command-line kit as `lockstep`. Every command that reads
 * the registry or the runs first brings them in line with the workspace's
 * outputs (workspace-sync.ts), so they show what `lockstep repro` left.
 */

/** A failure of the work itself (exit 1), as opposed to a command line that cannot run (UserError, exit 2). */
class Failure extends UserError {
  constructor(message: string) {
    super({ message }, EXIT.failure);
  }
}

const fmt = (x: number | undefined): string => (x === undefined ? '-' : x.toFixed(4));

function rootOf(io: Io): string {
  const root = projectRoot(io.cwd);
  if (!root) throw new Failure('not inside a Lockstep project (no pipeline.yaml here or above)');
  return root;
}

/** Work whose errors are about the data or the registry, not the command line: one line, exit 1. */
async function failing<T>(f: () => Promise<T> | T): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new Failure((e as Error).message);
  }
}

/** The project root, with the registry and runs brought in line with the workspace (saying what changed). */
async function syncedRoot(io: Io): Promise<string> {
  const root = rootOf(io);
  const said = describeSync(await failing(() => syncWithWorkspace(root)));
  if (said) io.err(`leads: ${said}`);
  return root;
}

function versionArg(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1) throw new UserError({ message: `a version is a positive whole number, got '${text}'` });
  return n;
}

function stageArg(text: string): RegistryStage {
  try {
    return parseStage(text);
  } catch (e) {
    throw new UserError({ message: (e as Error).message });
  }
}

const modelOptions = (cmd: ReturnType<Program['command']['command']>) =>
  cmd
    .option('--version <n>', 'a registry version', wholeNumber('--version', 1))
    .option('--stage <stage>', 'whatever version a registry stage holds (Staging, Production)')
    .option('--workspace', "the model the workspace's select outputs name (the default)");

function build(io: Io): Program {
  const p = createProgram('leads', 'the lead-conversion example: runs, model registry, predictions, service, drift', io, { errorPrefix: 'leads: ' });
  const cli = p.command;

  const runs = cli.command('runs').description('training runs (MLflow-style records in mlruns/, filed from the pipeline’s outputs)');
  runs
    .command('list', { isDefault: true })
    .description('every training run, oldest first')
    .option('--json', 'as JSON')
    .action(
      p.action(async (o: { json?: boolean }) => {
        const root = await syncedRoot(io);
        const list = new RunStore(root).list();
        if (o.json) return io.out(JSON.stringify(list, null, 2));
        if (list.length === 0) return io.out('no runs yet (run the pipeline: lockstep repro)');
        io.out(
          renderTable(
            ['ID', 'MODEL', 'TEST ACC', 'TEST F1', 'TEST F1(W)', 'GIT', 'STARTED'],
            list.map((r: RunRecord) => [
              r.id,
              r.model,
              fmt(r.metrics.test.accuracy),
              fmt(r.metrics.test.f1),
              fmt(r.metrics.test.f1_weighted),
              r.git ? r.git.commit.slice(0, 8) + (r.git.dirty ? '+' : '') : '-',
              r.started_at,
            ]),
          ),
        );
      }),
    );
  runs
    .command('show')
    .description('one run as JSON: params, metrics, data checksum, git revision, artifacts with their cache hashes')
    .argument('<id>', 'a run id or a unique prefix of one')
    .action(
      p.action(async (id: string) => {
        const root = await syncedRoot(io);
        io.out(JSON.stringify(await failing(() => new RunStore(root).get(id)), null, 2));
      }),
    );

  const registry = cli.command('registry').description('model versions and their stages (None, Staging, Production, Archived)');
  registry
    .command('list', { isDefault: true })
    .description("every version; the workspace's model is registered first if it is new")
    .option('--json', 'as JSON')
    .action(
      p.action(async (o: { json?: boolean }) => {
        const root = await syncedRoot(io);
        const list = await failing(() => new ModelRegistry(root).list());
        if (o.json) return io.out(JSON.stringify(list, null, 2));
        if (list.length === 0) return io.out('the registry is empty: the pipeline has not selected a model here yet (run: lockstep repro)');
        io.out(
          renderTable(
            ['VERSION', 'STAGE', 'MODEL', 'TEST ACC', 'TEST F1(W)', 'CREATED'],
            list.map((x: ModelVersion) => [String(x.version), x.stage, x.name, fmt(x.metrics.test.accuracy), fmt(x.metrics.test.f1_weighted), x.created_at]),
          ),
        );
      }),
    );
  registry
    .command('show')
    .description('one version as JSON')
    .argument('<version>', 'a version number', versionArg)
    .action(
      p.action(async (v: number) => {
        const root = await syncedRoot(io);
        io.out(JSON.stringify(await failing(() => new ModelRegistry(root).get(v)), null, 2));
      }),
    );
  registry
    .command('promote')
    .description('move a version to a stage (Production only from Staging); the version there before is archived')
    .argument('<version>', 'a version number', versionArg)
    .requiredOption('--to <stage>', 'Staging, Production, Archived or None', stageArg)
    .action(
      p.action(async (v: number, o: { to: RegistryStage }) => {
        const root = await syncedRoot(io);
        const moved = await failing(() => new ModelRegistry(root).transition(v, o.to, o.to === 'Production' ? { requireFrom: 'Staging' } : {}));
        io.out(`version ${moved.version} (${moved.name}) is now in ${moved.stage}`);
      }),
    );

  modelOptions(
    cli
      .command('predict')
      .description('predict a CSV of leads (raw_data.csv rows, or the 12 feature columns with --features)')
      .requiredOption('-i, --input <file>', 'the CSV to predict')
      .option('-o, --output <file>', 'where the CSV with prediction and probability goes (default: stdout)')
      .option('--features', 'the input has the 12 model feature columns, not raw rows')
      .option('--skip-invalid', 'predict the rows that can be, report each other row (row, field, reason) and leave it out'),
  ).action(
    p.action(async (o: ModelOptions & { input: string; output?: string; features?: boolean; skipInvalid?: boolean }) => {
      const root = rootOf(io);
      const ref = modelChoice(o);
      const mode: PredictMode = o.features ? 'features' : 'raw';
      const csvTable = await failing(() => readCsvInput(o.input));
      const { bundle, by } = await failing(() => loadChosenModel(root, ref, (l) => io.err(`leads: ${l}`)));
      const outcome = await predictValidRows(csvTable.rows, { mode, bundle });
      const shown = outcome.errors.slice(0, 20);
      for (const e of shown) io.err(`${o.input}: row ${e.row}: ${e.message}`);
      if (outcome.errors.length > shown.length) io.err(`… and ${outcome.errors.length - shown.length} more rows with errors`);
      if (outcome.errors.length && !o.skipInvalid) {
        const hint = mode === 'raw' ? ' (rows in the 12-column feature form need --features)' : ' (raw_data.csv rows need no --features)';
        throw new Failure(
          `${outcome.errors.length} of ${csvTable.rows.length} rows cannot be predicted; nothing written${hint}; --skip-invalid predicts the others`,
        );
      }
      const good = csvTable.rows.flatMap((r, i): Record<string, CsvCell>[] => {
        const pr = outcome.predictions[i];
        return pr ? [{ ...r, ...pr }] : [];
      });
      if (good.length === 0) throw new Failure(`no row of ${o.input} can be predicted; nothing written`);
      const csv = formatCsv([...csvTable.columns.filter((c) => c !== 'prediction' && c !== 'probability'), 'prediction', 'probability'], good);
      const skipped = outcome.errors.length ? `; ${outcome.errors.length} invalid rows left out` : '';
      if (o.output) {
        fs.writeFileSync(path.resolve(o.output), csv);
        io.err(`${good.length} predictions by ${by} written to ${o.output}${skipped}`);
      } else {
        io.stdout.write(csv);
        io.err(`${good.length} predictions by ${by}${skipped}`);
      }
    }),
  );

  modelOptions(
    cli
      .command('serve')
      .description('serve predictions over HTTP (POST /predict, GET /model, /health, /openapi.json, /docs)')
      .option('-p, --port <port>', 'port (0: any free one)', wholeNumber('--port', 0, 65535), 8080)
      .option('--host <host>', 'address to listen on', '127.0.0.1')
      .option('--quiet', 'no request logs')
      .option('--body-limit <bytes>', 'largest request body', wholeNumber('--body-limit', 1024, 64 << 20))
      .option('--timeout-ms <ms>', 'a request not received in this time gets 408', wholeNumber('--timeout-ms', 100, 600_000)),
  ).action(
    p.action(async (o: ModelOptions & { port: number; host: string; quiet?: boolean; bodyLimit?: number; timeoutMs?: number }) => {
      const root = rootOf(io);
      const { serve } = await import('../serve/serve-command.js');
      await serve(
        root,
        { ref: modelChoice(o), port: o.port, host: o.host, quiet: !!o.quiet, bodyLimit: o.bodyLimit, timeoutMs: o.timeoutMs },
        (m) => new Failure(m),
      );
    }),
  );

  modelOptions(
    cli
      .command('drift')
      .description('compare a new batch with the training data, feature by feature (exit 3 when too much drifted)')
      .requiredOption('-i, --input <file>', 'the new batch (raw_data.csv rows, or feature rows with --features)')
      .option('--features', 'the batch has the 12 model feature columns')
      .option('--reference <file>', 'the reference batch (default: data/features/train.csv)')
      .option('--output-dir <dir>', 'where report.json and report.html go', 'drift'),
  ).action(
    p.action(async (o: ModelOptions & { input: string; features?: boolean; reference?: string; outputDir: string }) => {
      const root = rootOf(io);
      const { drift } = await import('../drift/drift-command.js');
      return failing(() => drift(root, { ref: modelChoice(o), input: o.input, features: !!o.features, reference: o.reference, outputDir: o.outputDir }, io));
    }),
  );
  return p;
}

async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  const program = build(io);
  if (argv.length === 0) {
    program.command.outputHelp({ error: true });
    return EXIT.usage;
  }
  return program.run(argv);
}

process.exitCode = await main(process.argv.slice(2));
