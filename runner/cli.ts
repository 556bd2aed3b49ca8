import { UserError } from './errors.js';
import { processIo, type Io } from './cli-io.js';
import { collect, createProgram, Option, wholeNumber, type Program } from './cli-kit.js';
import { VERSION } from './version.js';

/**
 * `lockstep`: each command parses its arguments (commander), imports the
 * module that does the work only when it runs (so a no-op `repro` loads
 * nothing it does not use), calls one function and returns its exit code.
 */

type Opts = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);

function oneOf(opts: Opts, names: readonly string[]): void {
  const given = names.filter((n) => opts[n]);
  if (given.length > 1)
    throw new UserError({ message: `choose one of ${names.map((n) => `--${n.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`).join(', ')}` });
}

function tableFormat(o: Opts): 'json' | 'md' | 'text' {
  oneOf(o, ['json', 'md']);
  return o.json ? 'json' : o.md ? 'md' : 'text';
}

/** Every top-level command; `build` registers only the one being run when it knows which (a few ms saved per run). */
const COMMANDS = [
  'repro',
  'status',
  'dag',
  'add',
  'checkout',
  'push',
  'pull',
  'fetch',
  'remote',
  'cache',
  'gc',
  'params',
  'metrics',
  'plots',
  'exp',
  'worker',
  'queue',
  'ui',
];

function build(io: Io, only?: string): Program {
  const want = (name: string) => only === undefined || only === name;
  const p = createProgram('lockstep', 'a declarative, cache-aware pipeline runner (dvc.yaml-compatible)', io, { version: `lockstep ${VERSION}` });
  const cli = p.command;

  if (want('repro')) {
    cli
      .command('repro')
      .description('run the stages whose inputs changed, and the stages they need')
      .argument('[targets...]', 'stage names, foreach/matrix groups or output paths (default: every stage)')
      .option('-f, --force', 'run even if up to date')
      .option('-s, --single-item', 'only the targets, not their upstream stages')
      .option('--downstream', 'the targets and every stage after them')
      .option('--dry', 'print what would run and why; run nothing, write nothing')
      .option('-k, --keep-going', 'after a failure, go on with stages that do not depend on it')
      .option('-j, --jobs <n>', 'run up to N independent stages at once', wholeNumber('--jobs', 1), 1)
      .option('--wait <seconds>', 'wait for another running repro instead of stopping', wholeNumber('--wait', 0), 0)
      .option('--json', 'one JSON document on stdout (stage output goes to stderr)')
      .option('--no-run-cache', 'neither restore from nor record into the run-cache')
      .option('--allow-missing', 'a stage whose only change is missing outputs counts as up to date')
      .option('--pull', 'fetch outputs and run-cache entries from the remote as stages need them')
      .option('--push', "upload each stage's outputs and run-cache entry as soon as it finishes")
      .option('--distributed', 'send each stage to the workers (lockstep worker) when its upstream stages are done')
      .option('-r, --remote <name>', 'the remote for --pull/--push (default: the configured default)')
      .action(
        p.action(async (targets: string[], o: Opts, cmd: { getOptionValueSource(k: string): string | undefined }) => {
          if (o.distributed) {
            const given = ['force', 'singleItem', 'downstream', 'dry', 'keepGoing', 'jobs', 'wait', 'json', 'runCache', 'allowMissing', 'pull', 'push'].find(
              (k) => cmd.getOptionValueSource(k) === 'cli',
            );
            if (given)
              throw new UserError({
                message: `--${given.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()).replace(/^run-cache$/, 'no-run-cache')} does not go with --distributed (workers run each stage with repro --pull --push)`,
              });
            const { reproDistributed } = await import('./queue/stages.js');
            return reproDistributed(io, { targets, ...(typeof o.remote === 'string' ? { remote: o.remote } : {}) });
          }
          const { reproCommand } = await import('./commands/repro.js');
          return reproCommand(io, {
            targets,
            force: !!o.force,
            single: !!o.singleItem,
            downstream: !!o.downstream,
            dry: !!o.dry,
            keepGoing: !!o.keepGoing,
            jobs: o.jobs as number,
            json: !!o.json,
            waitMs: (o.wait as number) * 1000,
            runCache: o.runCache !== false,
            allowMissing: !!o.allowMissing,
            pull: !!o.pull,
            push: !!o.push,
            remote: str(o.remote),
          });
        }),
      );
  }

  if (want('status')) {
    cli
      .command('status')
      .description('say which stages are stale, and why')
      .argument('[targets...]', 'stages or output paths (default: every stage)')
      .option('--json', 'machine-readable output')
      .option('--remote', 'instead: which cached outputs are missing locally or on the remote')
      .option('-r, --remote-name <name>', 'the remote for --remote (default: the configured default)')
      .action(
        p.action(async (targets: string[], o: Opts) => {
          if (o.remote || o.remoteName) {
            const { remoteStatusCommand } = await import('./commands/transfer.js');
            return remoteStatusCommand(io, { targets, remote: str(o.remoteName), json: !!o.json });
          }
          const { statusCommand } = await import('./commands/status.js');
          return statusCommand(io, { targets, json: !!o.json });
        }),
      );
  }

  if (want('dag')) {
    cli
      .command('dag')
      .description('print the stage graph')
      .argument('[targets...]', 'only these stages and what they need')
      .option('--mermaid', 'as a Mermaid flowchart')
      .option('--dot', 'as Graphviz dot')
      .option('--html', 'as an HTML page with each stage’s state and last duration')
      .option('-o, --out <file>', 'where --html writes (default: dag.html)')
      .action(
        p.action(async (targets: string[], o: Opts) => {
          oneOf(o, ['mermaid', 'dot', 'html']);
          if (o.out && !o.html) throw new UserError({ message: '-o/--out goes with --html' });
          const { dagCommand } = await import('./commands/dag.js');
          return dagCommand(io, { format: o.mermaid ? 'mermaid' : o.dot ? 'dot' : o.html ? 'html' : 'text', targets, out: str(o.out) });
        }),
      );
  }

  if (want('add')) {
    cli
      .command('add')
      .description('track data no stage makes: a PATH.dvc pointer, its content in the cache, a .gitignore entry beside it')
      .argument('<paths...>', 'files or folders')
      .action(
        p.action(async (paths: string[]) => {
          const { addCommand } = await import('./commands/add.js');
          return addCommand(io, { paths });
        }),
      );
  }

  if (want('checkout')) {
    cli
      .command('checkout')
      .description('put outputs back as pipeline.lock records them, from the cache')
      .argument('[targets...]', 'stages or output paths (default: every output)')
      .option('-f, --force', 'also overwrite outputs whose changes are not in the cache')
      .option('--json', 'machine-readable output')
      .action(
        p.action(async (targets: string[], o: Opts) => {
          const { checkoutCommand } = await import('./commands/checkout.js');
          return checkoutCommand(io, { targets, force: !!o.force, json: !!o.json });
        }),
      );
  }

  if (want('push') || want('pull') || want('fetch')) {
    for (const verb of ['push', 'pull', 'fetch'] as const) {
      const what = {
        push: 'upload cached outputs and run-cache entries to a remote',
        pull: 'fetch cached outputs and run-cache entries from a remote and check them out',
        fetch: 'fetch cached outputs and run-cache entries into the local cache only',
      }[verb];
      const cmd = cli
        .command(verb)
        .description(what)
        .argument('[targets...]', 'stages or output paths (default: everything pipeline.lock records)')
        .option('-r, --remote <name>', 'which remote (default: the configured default)')
        .option('-j, --jobs <n>', "transfers at once (default: the remote's jobs, 8)", wholeNumber('--jobs', 1))
        .option('--no-run-cache', 'leave run-cache entries out')
        .option('--json', 'machine-readable output');
      // pull and fetch always verify what they download; push can also check the copies the remote already has.
      if (verb === 'push') cmd.option('--verify', 'also download and hash the copies the remote already has (wrong ones are replaced)');
      else cmd.addOption(new Option('--verify').hideHelp());
      cmd.action(
        p.action(async (targets: string[], o: Opts) => {
          if (o.verify && verb !== 'push') throw new UserError({ message: `--verify goes with push (${verb} always verifies what it downloads)` });
          const m = await import('./commands/transfer.js');
          const args = {
            targets,
            remote: str(o.remote),
            jobs: o.jobs as number | undefined,
            runCache: o.runCache !== false,
            json: !!o.json,
            verify: !!o.verify,
          };
          if (verb === 'push') return m.pushCommand(io, args);
          return m.fetchCommand(io, args, verb === 'pull' ? 'checkout' : undefined);
        }),
      );
    }
  }

  if (want('remote')) {
    const remote = cli.command('remote').description('configure remotes (.lockstep/config; --local: config.local, not committed)');
    remote
      .command('add')
      .description('add a remote: a folder, http(s)://… (WebDAV) or s3://bucket/prefix')
      .argument('<name>')
      .argument('<url>')
      .option('-d, --default', 'make it the default remote')
      .option('--local', 'write .lockstep/config.local (for credentials; not committed)')
      .option('-o, --option <key=value>', 'jobs, read_only, endpoint, region, force_path_style, user', collect, [])
      .action(p.action(async (name: string, url: string, o: Opts) => remoteCall('add', [name, url], o)));
    remote
      .command('list', { isDefault: true })
      .description('list the configured remotes')
      .action(p.action(async (o: Opts) => remoteCall('list', [], o)));
    remote
      .command('remove')
      .description('remove a remote')
      .argument('<name>')
      .action(p.action(async (name: string, o: Opts) => remoteCall('remove', [name], o)));
    remote
      .command('default')
      .description('choose the default remote')
      .argument('<name>')
      .option('--local', 'write .lockstep/config.local')
      .action(p.action(async (name: string, o: Opts) => remoteCall('default', [name], o)));
    async function remoteCall(sub: string, positionals: string[], o: Opts): Promise<number> {
      const { remoteCommand } = await import('./commands/remote.js');
      return remoteCommand(io, { sub, positionals, default: !!o.default, local: !!o.local, options: list(o.option) });
    }
  }

  if (want('cache')) {
    cli
      .command('cache')
      .description('the local cache')
      .command('verify')
      .description('hash every cached object; --repair quarantines damaged ones and restores good copies from the workspace or the remote')
      .option('--repair', 'quarantine damaged objects and restore good copies')
      .option('-r, --remote <name>', 'the remote to restore from (default: the configured default)')
      .option('--json', 'machine-readable output')
      .action(
        p.action(async (o: Opts) => {
          const { cacheVerifyCommand } = await import('./commands/cache-verify.js');
          return cacheVerifyCommand(io, { repair: !!o.repair, json: !!o.json, remote: str(o.remote) });
        }),
      );
  }

  if (want('gc')) {
    cli
      .command('gc')
      .description('list cache objects nothing uses any more (a dry run); -f removes them')
      .option('-f, --force', 'remove them')
      .option('-a, --all-branches', 'also keep what the pipeline.lock of every branch needs')
      .option('-T, --all-tags', '… of every tag')
      .option('-A, --all-commits', '… of every commit')
      .option('--no-experiments', 'do not keep what recorded experiments produced')
      .option('--json', 'machine-readable output')
      .action(
        p.action(async (o: Opts) => {
          const { gcCommand } = await import('./commands/gc.js');
          return gcCommand(io, {
            force: !!o.force,
            branches: !!o.allBranches,
            tags: !!o.allTags,
            commits: !!o.allCommits,
            experiments: o.experiments !== false,
            json: !!o.json,
          });
        }),
      );
  }

  if (want('params')) {
    const params = cli.command('params').description('compare params between revisions');
    params
      .command('diff')
      .description("params that differ between two revisions (git revisions or 'workspace'; default HEAD and the workspace)")
      .argument('[revs...]', 'at most two revisions')
      .option('--all', 'include unchanged params')
      .option('--json', 'as JSON')
      .option('--md', 'as a Markdown table')
      .action(
        p.action(async (revs: string[], o: Opts) => {
          if (revs.length > 2) throw new UserError({ message: 'params diff takes at most two revisions' });
          const { diffCommand } = await import('./commands/params-metrics.js');
          return diffCommand(io, 'params', { revs, format: tableFormat(o), all: !!o.all });
        }),
      );
  }

  if (want('metrics')) {
    const metrics = cli.command('metrics').description('show and compare metrics');
    metrics
      .command('show')
      .description('the metrics files’ values in the workspace or at git revisions')
      .argument('[revs...]')
      .option('--json', 'as JSON')
      .option('--md', 'as a Markdown table')
      .action(
        p.action(async (revs: string[], o: Opts) => {
          const { metricsShowCommand } = await import('./commands/params-metrics.js');
          return metricsShowCommand(io, { revs, format: tableFormat(o) });
        }),
      );
    metrics
      .command('diff')
      .description('metrics that differ between two revisions, with the change')
      .argument('[revs...]', 'at most two revisions')
      .option('--all', 'include unchanged metrics')
      .option('--json', 'as JSON')
      .option('--md', 'as a Markdown table')
      .action(
        p.action(async (revs: string[], o: Opts) => {
          if (revs.length > 2) throw new UserError({ message: 'metrics diff takes at most two revisions' });
          const { diffCommand } = await import('./commands/params-metrics.js');
          return diffCommand(io, 'metrics', { revs, format: tableFormat(o), all: !!o.all });
        }),
      );
  }

  if (want('plots')) {
    const plots = cli.command('plots').description('render the declared plots into one self-contained HTML report');
    plots
      .command('show')
      .description('the workspace’s plots')
      .argument('[targets...]', 'plot files or stages (default: every declared plot)')
      .option('-o, --out <dir>', 'where the report goes (default: lockstep_plots)')
      .option('--json', 'the vega-lite specs and data as JSON instead')
      .action(p.action(async (targets: string[], o: Opts) => plotsCall(false, targets, [], o)));
    plots
      .command('diff')
      .description("overlay plots of git revisions, 'workspace' and experiments")
      .argument('[revs...]', 'git revisions or workspace')
      .option('--exp <name>', 'an experiment to overlay (repeatable)', collect, [])
      .option('-t, --targets <target>', 'a plot file or stage (repeatable)', collect, [])
      .option('-o, --out <dir>', 'where the report goes (default: lockstep_plots)')
      .option('--json', 'the vega-lite specs and data as JSON instead')
      .action(p.action(async (revs: string[], o: Opts) => plotsCall(true, list(o.targets), revs, o)));
    async function plotsCall(diff: boolean, targets: string[], revisions: string[], o: Opts): Promise<number> {
      const { plotsCommand } = await import('./commands/plots.js');
      return plotsCommand(io, { diff, targets, revisions, experiments: list(o.exp), outDir: str(o.out), json: !!o.json });
    }
  }

  if (want('exp')) {
    const exp = cli.command('exp').description('experiments: runs with params set from the command line, compared and brought back');
    exp
      .command('run')
      .description('set params from the command line, run repro, record an experiment (several values make a queued grid)')
      .argument('[targets...]', 'only these stages and what they need (default: every stage)')
      .option(
        '-S, --set-param <override>',
        'key=value (a,b,c or range()/choice() make a grid), +key=v adds, ++key=v adds or sets, ~key deletes (repeatable)',
        collect,
        [],
      )
      .option('-n, --name <name>', 'the experiment’s name (default exp-N)')
      .option('--queue', 'queue the experiment(s) instead of running now')
      .option('--run-all', 'run the queued experiments, each in a temporary copy of the repository')
      .option('-j, --jobs <n>', 'with --run-all: experiments at once', wholeNumber('--jobs', 1), 1)
      .option('-f, --force', 'run the stages even if up to date')
      .option('--distributed', 'queue the experiments on the shared scheduler (Redis) for worker machines')
      .option('--no-wait', 'with --distributed: return once queued, do not wait for the results')
      .option('-r, --remote <name>', 'with --distributed: the remote objects travel through')
      .action(
        p.action(async (targets: string[], o: Opts) => {
          const { expRunCommand } = await import('./exp/run.js');
          return expRunCommand(io, {
            targets,
            set: list(o.setParam),
            ...(typeof o.name === 'string' ? { name: o.name } : {}),
            queue: !!o.queue,
            runAll: !!o.runAll,
            jobs: o.jobs as number,
            force: !!o.force,
            distributed: !!o.distributed,
            noWait: o.wait === false,
            ...(typeof o.remote === 'string' ? { remote: o.remote } : {}),
          });
        }),
      );
    exp
      .command('show')
      .description('one row per experiment (and the workspace); the best value per metric gets a ★')
      .option('--sort-by <column>', 'sort by a metric or param (any unambiguous suffix; metrics best first)')
      .option('--all', 'every param and metric, not only those that differ or matter')
      .option('--only <glob>', 'only these columns (repeatable, or comma-separated)', collect, [])
      .option('--drop <glob>', 'leave these columns out (repeatable, or comma-separated)', collect, [])
      .option('--json', 'as JSON')
      .option('--csv', 'as CSV')
      .option('--md', 'as a Markdown table')
      .action(
        p.action(async (o: Opts) => {
          oneOf(o, ['json', 'csv', 'md']);
          const globs = (x: unknown) =>
            list(x)
              .flatMap((g) => g.split(','))
              .filter(Boolean);
          const { expShowCommand } = await import('./exp/show.js');
          return expShowCommand(io, {
            format: o.json ? 'json' : o.csv ? 'csv' : o.md ? 'md' : 'text',
            ...(typeof o.sortBy === 'string' ? { sortBy: o.sortBy } : {}),
            color: io.isTTY && !process.env.NO_COLOR,
            all: !!o.all,
            only: globs(o.only),
            drop: globs(o.drop),
          });
        }),
      );
    exp
      .command('diff')
      .description('params and metrics that differ between two experiments')
      .argument('<a>')
      .argument('<b>')
      .option('--all', 'include what is the same in both')
      .option('--json', 'as JSON')
      .option('--md', 'as a Markdown table')
      .action(
        p.action(async (a: string, b: string, o: Opts) => {
          const { expDiffCommand } = await import('./exp/diff.js');
          return expDiffCommand(io, { a, b, format: tableFormat(o), all: !!o.all });
        }),
      );
    exp
      .command('apply')
      .description('bring an experiment back: its params files, its lock entries, its outputs (from the cache)')
      .argument('<name>')
      .action(
        p.action(async (name: string) => {
          const { expApplyCommand } = await import('./exp/apply.js');
          return expApplyCommand(io, { name });
        }),
      );
    exp
      .command('remove')
      .description('forget experiments')
      .argument('[names...]')
      .option('--all', 'every experiment')
      .option('--queued', 'every queued experiment')
      .action(
        p.action(async (names: string[], o: Opts) => {
          const { expRemoveCommand } = await import('./exp/remove.js');
          return expRemoveCommand(io, { names, all: !!o.all, queued: !!o.queued });
        }),
      );
  }

  if (want('worker')) {
    cli
      .command('worker')
      .description('take queued experiments and stages from the shared scheduler and run them here (objects through the remote)')
      .option('-j, --jobs <n>', 'jobs at once', wholeNumber('--jobs', 1), 1)
      .option('--queue <name>', 'the queue to take jobs from (default: the configured one)')
      .option('--once', 'take one job, run it, exit')
      .option('--idle-exit <seconds>', 'exit after this long with nothing to do', wholeNumber('--idle-exit', 0))
      .action(
        p.action(async (o: Opts) => {
          const { workerCommand } = await import('./queue/worker.js');
          return workerCommand(io, {
            jobs: o.jobs as number,
            ...(typeof o.queue === 'string' ? { queue: o.queue } : {}),
            once: !!o.once,
            ...(o.idleExit !== undefined ? { idleExitS: o.idleExit as number } : {}),
          });
        }),
      );
  }

  if (want('queue')) {
    const queue = cli.command('queue').description('the shared queue (Redis): jobs and their states, a run’s log, retry, cancel');
    const queueCall = async (sub: string, names: string[], o: Opts) => {
      const { queueCommand } = await import('./queue/commands.js');
      return queueCommand(io, { sub, names, failed: !!o.failed, all: !!o.all, json: !!o.json, ...(typeof o.queue === 'string' ? { queue: o.queue } : {}) });
    };
    const queueOpt = (c: ReturnType<typeof queue.command>) => c.option('--queue <name>', 'which queue (default: the configured one)');
    queueOpt(
      queue
        .command('status', { isDefault: true })
        .description('every job with its state (queued, running on WORKER, done, failed)')
        .option('--json', 'machine-readable output'),
    ).action(p.action(async (o: Opts) => queueCall('status', [], o)));
    queueOpt(queue.command('logs').description("a job's log (stage output kept in the cache, also for failed runs)").argument('<name>')).action(
      p.action(async (name: string, o: Opts) => queueCall('logs', [name], o)),
    );
    queueOpt(queue.command('retry').description('queue failed jobs again').argument('[names...]').option('--failed', 'every failed job')).action(
      p.action(async (names: string[], o: Opts) => queueCall('retry', names, o)),
    );
    queueOpt(queue.command('cancel').description('remove queued jobs').argument('[names...]').option('--all', 'every queued job')).action(
      p.action(async (names: string[], o: Opts) => queueCall('cancel', names, o)),
    );
  }

  if (want('ui')) {
    cli
      .command('ui')
      .description('the web app: experiments, the pipeline (live during a repro), runs and models')
      .option('-p, --port <port>', 'port (0: any free one)', wholeNumber('--port', 0, 65535), 8765)
      .option('--host <host>', 'address to listen on', '127.0.0.1')
      .action(
        p.action(async (o: Opts) => {
          const { uiCommand } = await import('./commands/ui.js');
          return uiCommand(io, { port: o.port as number, host: o.host as string });
        }),
      );
  }

  return p;
}

export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const [name] = argv;
  // Compiling the hashing wasm takes a few tens of ms off-thread: start it now so it overlaps parsing.
  if (name === 'repro' || name === 'status') void import('./hash/xxhash.js').then((m) => m.getHasher());
  // Building every command's options costs a few ms; a run of one known command needs only that one.
  // Top-level help, `help CMD` and an unknown command (with its suggestion) see them all.
  const program = build(io, name !== undefined && COMMANDS.includes(name) ? name : undefined);
  if (argv.length === 0) {
    program.command.outputHelp();
    return 0;
  }
  return program.run(argv);
}
