import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UserError, formatDiagnostic, didYouMean } from './errors.js';
import { processIo, type Io } from './cli-io.js';

const USAGE = `lockstep — a declarative, cache-aware pipeline runner

Usage: lockstep <command> [options]

Commands:
  repro [targets…]     run the stages whose inputs changed (and what they need)
      -f, --force          run even if up to date
      -s, --single-item    only the targets, not their upstream stages
      --downstream         the targets and every stage after them
      --dry                print what would run, run nothing
      -k, --keep-going     after a failure, go on with independent stages
      -j, --jobs N         run up to N independent stages at once (default 1)
      --wait SECONDS       wait for another running repro instead of stopping
      --json               one JSON document on stdout (for CI)
      --no-run-cache       neither restore from nor record into the run-cache
      --allow-missing      treat a stage as up to date when only its outputs are missing
      --pull               fetch outputs and run-cache entries from the remote as stages need them
      --push               upload each stage's outputs and run-cache entry as soon as it finishes
      --distributed        send each stage to the workers when its upstream stages are done
      -r, --remote NAME    the remote for --pull (default: the configured default)
  status [targets…]    say which stages are stale, and why   [--json]
      --remote [-r NAME]   instead: which cached outputs are missing locally or on the remote
  remote add NAME URL [--default] [--local] [-o key=value …]
                       a folder, http(s)://… (WebDAV) or s3://bucket/prefix;
                       --local writes .lockstep/config.local (not committed)
  remote list | remove NAME | default NAME
  push [targets…]      upload cached outputs and run-cache entries to a remote
  pull [targets…]      fetch them from a remote and check them out
  fetch [targets…]     fetch them into the local cache only
      -r, --remote NAME    which remote (default: the configured default)
      -j, --jobs N         transfers at once (default: the remote's jobs, 8)
      --no-run-cache       leave run-cache entries out
  dag [targets…]       print the stage graph   [--mermaid | --dot | --html [-o FILE]]
  plots show [targets…]          render the declared plots into one HTML report (-o DIR, --json)
  plots diff [REV…] [--exp NAME …] [-t target …]
                       overlay plots of git revisions, 'workspace' and experiments
  checkout [targets…]  put outputs back as pipeline.lock records them, from the cache
      -f, --force          also overwrite outputs whose changes are not in the cache
  gc                   list cache objects nothing uses any more (dry run); -f removes them
      -a, --all-branches   also keep what the pipeline.lock of every branch needs
      -T, --all-tags       … of every tag;   -A, --all-commits   … of every commit
      --no-experiments     do not keep what recorded experiments produced
  params diff [A [B]]  params that differ between revisions (git revisions or 'workspace')
  metrics show [REV…]  metrics of the workspace or of git revisions
  metrics diff [A [B]] metrics that differ, with the change   (--json | --md, --all)
  exp run [-S key=v1,v2 …] [--name N] [--queue] [-f]
                       run an experiment with params set from the command line;
                       several values make a grid (the cartesian product), queued
  exp run --run-all [-j N]
                       run queued experiments N at a time, each in a temporary copy
  exp show [--sort-by METRIC] [--json | --csv | --md]
  exp diff A B         params and metrics that differ between two experiments
  exp apply NAME       restore an experiment's params and outputs (from the cache)
  exp remove NAME… | --all | --queued
  exp run -S … --distributed [--no-wait]
                       queue the experiments on the shared scheduler (Redis) for worker machines
  worker [-j N] [--queue NAME] [--once] [--idle-exit SECONDS]
                       take queued experiments and run them here (objects through the remote)
  queue status | logs NAME | retry [NAME…|--failed] | cancel NAME…|--all
                       the shared queue: jobs and states, a run's log, requeue, cancel

Run 'lockstep <command> --help' for a command's options.`;

type Handler = (io: Io, argv: string[]) => Promise<number>;

type Flags = Record<string, string | boolean | undefined>;

function parse(argv: string[], options: ParseArgsConfig['options']): { values: Flags; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    return { values: r.values as Flags, positionals: r.positionals };
  } catch (e) {
    const msg = (e as Error).message.replace(/\. To specify a positional.*$/s, '');
    throw new UserError({ message: msg, hint: `run 'lockstep --help'` });
  }
}

function intOpt(v: unknown, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UserError({ message: `${name} must be a whole number of at least ${min}, got '${String(v)}'` });
  return n;
}

const commands: Record<string, Handler> = {
  async repro(io, argv) {
    const { values: v, positionals } = parse(argv, {
      force: { type: 'boolean', short: 'f' },
      'single-item': { type: 'boolean', short: 's' },
      downstream: { type: 'boolean' },
      dry: { type: 'boolean' },
      'keep-going': { type: 'boolean', short: 'k' },
      jobs: { type: 'string', short: 'j' },
      wait: { type: 'string' },
      json: { type: 'boolean' },
      'no-run-cache': { type: 'boolean' },
      'allow-missing': { type: 'boolean' },
      pull: { type: 'boolean' },
      push: { type: 'boolean' },
      distributed: { type: 'boolean' },
      remote: { type: 'string', short: 'r' },
    });
    if (v.help) return help(io);
    if (v.distributed) {
      const other = ['force', 'single-item', 'downstream', 'dry', 'keep-going', 'jobs', 'wait', 'json', 'no-run-cache', 'allow-missing', 'pull', 'push'].find((k) => v[k] !== undefined);
      if (other) throw new UserError({ message: `--${other} does not go with --distributed (workers run each stage with repro --pull --push)` });
      const { reproDistributed } = await import('./queue/stages.js');
      return reproDistributed(io, { targets: positionals, ...(typeof v.remote === 'string' ? { remote: v.remote } : {}) });
    }
    const { reproCommand } = await import('./commands/repro.js');
    return reproCommand(io, {
      targets: positionals,
      force: !!v.force,
      single: !!v['single-item'],
      downstream: !!v.downstream,
      dry: !!v.dry,
      keepGoing: !!v['keep-going'],
      jobs: intOpt(v.jobs, '--jobs', 1) ?? 1,
      json: !!v.json,
      waitMs: (intOpt(v.wait, '--wait', 0) ?? 0) * 1000,
      runCache: !v['no-run-cache'],
      allowMissing: !!v['allow-missing'],
      pull: !!v.pull,
      push: !!v.push,
      remote: v.remote as string | undefined,
    });
  },
  async status(io, argv) {
    const { values: v, positionals } = parse(argv, { json: { type: 'boolean' }, remote: { type: 'boolean' }, 'remote-name': { type: 'string', short: 'r' } });
    if (v.help) return help(io);
    if (v.remote || v['remote-name']) {
      const { remoteStatusCommand } = await import('./commands/transfer.js');
      return remoteStatusCommand(io, { targets: positionals, remote: v['remote-name'] as string | undefined, json: !!v.json });
    }
    const { statusCommand } = await import('./commands/status.js');
    return statusCommand(io, { targets: positionals, json: !!v.json });
  },
  async params(io, argv) {
    const [sub, ...rest] = argv;
    if (sub !== 'diff') throw new UserError({ message: sub ? `unknown params command '${sub}'` : 'missing params command', hint: `use 'lockstep params diff [REV_A [REV_B]]'` });
    const { values: v, positionals } = parse(rest, { json: { type: 'boolean' }, md: { type: 'boolean' }, all: { type: 'boolean' } });
    if (v.help) return help(io);
    if (positionals.length > 2) throw new UserError({ message: 'params diff takes at most two revisions' });
    const { diffCommand } = await import('./commands/params-metrics.js');
    return diffCommand(io, 'params', { revs: positionals, format: outputFormat(v), all: !!v.all });
  },
  async metrics(io, argv) {
    const [sub, ...rest] = argv;
    if (sub !== 'show' && sub !== 'diff') {
      throw new UserError({ message: sub ? `unknown metrics command '${sub}'` : 'missing metrics command', hint: `use 'lockstep metrics show [REV…]' or 'lockstep metrics diff [REV_A [REV_B]]'` });
    }
    const { values: v, positionals } = parse(rest, { json: { type: 'boolean' }, md: { type: 'boolean' }, all: { type: 'boolean' } });
    if (v.help) return help(io);
    const m = await import('./commands/params-metrics.js');
    if (sub === 'show') return m.metricsShowCommand(io, { revs: positionals, format: outputFormat(v) });
    if (positionals.length > 2) throw new UserError({ message: 'metrics diff takes at most two revisions' });
    return m.diffCommand(io, 'metrics', { revs: positionals, format: outputFormat(v), all: !!v.all });
  },
  async exp(io, argv) {
    const [sub, ...rest] = argv;
    const subs = ['run', 'show', 'diff', 'apply', 'remove'];
    if (!sub || !subs.includes(sub)) {
      throw new UserError({ message: sub ? `unknown exp command '${sub}'` : 'missing exp command', hint: didYouMean(sub ?? '', subs) ?? `use one of: ${subs.join(', ')}` });
    }
    if (sub === 'run') {
      const { values: v, positionals } = parse(rest, {
        set: { type: 'string', short: 'S', multiple: true },
        name: { type: 'string', short: 'n' },
        queue: { type: 'boolean' },
        'run-all': { type: 'boolean' },
        jobs: { type: 'string', short: 'j' },
        force: { type: 'boolean', short: 'f' },
        distributed: { type: 'boolean' },
        'no-wait': { type: 'boolean' },
        remote: { type: 'string', short: 'r' },
      });
      if (v.help) return help(io);
      if (positionals.length) throw new UserError({ message: `exp run takes no targets, got '${positionals[0]}'` });
      const { expRunCommand } = await import('./exp/run.js');
      return expRunCommand(io, {
        set: (v.set as unknown as string[] | undefined) ?? [],
        ...(typeof v.name === 'string' ? { name: v.name } : {}),
        queue: !!v.queue,
        runAll: !!v['run-all'],
        jobs: intOpt(v.jobs, '--jobs', 1) ?? 1,
        force: !!v.force,
        distributed: !!v.distributed,
        noWait: !!v['no-wait'],
        ...(typeof v.remote === 'string' ? { remote: v.remote } : {}),
      });
    }
    const m = await import('./exp/show.js');
    if (sub === 'show') {
      const { values: v } = parse(rest, { json: { type: 'boolean' }, csv: { type: 'boolean' }, md: { type: 'boolean' }, 'sort-by': { type: 'string' } });
      if (v.help) return help(io);
      if ([v.json, v.csv, v.md].filter(Boolean).length > 1) throw new UserError({ message: 'choose one of --json, --csv and --md' });
      return m.expShowCommand(io, {
        format: v.json ? 'json' : v.csv ? 'csv' : v.md ? 'md' : 'text',
        ...(typeof v['sort-by'] === 'string' ? { sortBy: v['sort-by'] } : {}),
        color: io.isTTY && !process.env.NO_COLOR,
      });
    }
    if (sub === 'diff') {
      const { values: v, positionals } = parse(rest, { json: { type: 'boolean' }, md: { type: 'boolean' } });
      if (positionals.length !== 2) throw new UserError({ message: 'exp diff takes two experiment names' });
      return m.expDiffCommand(io, { a: positionals[0]!, b: positionals[1]!, format: outputFormat(v) });
    }
    if (sub === 'apply') {
      const { positionals } = parse(rest, {});
      if (positionals.length !== 1) throw new UserError({ message: 'exp apply takes one experiment name' });
      return m.expApplyCommand(io, { name: positionals[0]! });
    }
    const { values: v, positionals } = parse(rest, { all: { type: 'boolean' }, queued: { type: 'boolean' } });
    return m.expRemoveCommand(io, { names: positionals, all: !!v.all, queued: !!v.queued });
  },
  async worker(io, argv) {
    const { values: v, positionals } = parse(argv, { jobs: { type: 'string', short: 'j' }, queue: { type: 'string' }, once: { type: 'boolean' }, 'idle-exit': { type: 'string' } });
    if (v.help) return help(io);
    if (positionals.length) throw new UserError({ message: `worker takes no arguments, got '${positionals[0]}'` });
    const { workerCommand } = await import('./queue/worker.js');
    const idle = intOpt(v['idle-exit'], '--idle-exit', 0);
    return workerCommand(io, { jobs: intOpt(v.jobs, '--jobs', 1) ?? 1, ...(typeof v.queue === 'string' ? { queue: v.queue } : {}), once: !!v.once, ...(idle !== undefined ? { idleExitS: idle } : {}) });
  },
  async queue(io, argv) {
    const [sub, ...rest] = argv;
    const { values: v, positionals } = parse(rest, { failed: { type: 'boolean' }, all: { type: 'boolean' }, json: { type: 'boolean' }, queue: { type: 'string' } });
    if (v.help || sub === '--help' || sub === '-h') return help(io);
    const { queueCommand } = await import('./queue/commands.js');
    return queueCommand(io, { sub, names: positionals, failed: !!v.failed, all: !!v.all, json: !!v.json, ...(typeof v.queue === 'string' ? { queue: v.queue } : {}) });
  },
  async dag(io, argv) {
    const { values: v, positionals } = parse(argv, { mermaid: { type: 'boolean' }, dot: { type: 'boolean' }, html: { type: 'boolean' }, out: { type: 'string', short: 'o' } });
    if (v.help) return help(io);
    if ([v.mermaid, v.dot, v.html].filter(Boolean).length > 1) throw new UserError({ message: `choose one of --mermaid, --dot and --html` });
    if (v.out && !v.html) throw new UserError({ message: `-o/--out goes with --html` });
    const { dagCommand } = await import('./commands/dag.js');
    return dagCommand(io, { format: v.mermaid ? 'mermaid' : v.dot ? 'dot' : v.html ? 'html' : 'text', targets: positionals, out: v.out as string | undefined });
  },
  async remote(io, argv) {
    const [sub, ...rest] = argv;
    const { values: v, positionals } = parse(rest, {
      default: { type: 'boolean', short: 'd' },
      local: { type: 'boolean' },
      option: { type: 'string', short: 'o', multiple: true },
    });
    if (v.help || sub === '--help' || sub === '-h') return help(io);
    const { remoteCommand } = await import('./commands/remote.js');
    return remoteCommand(io, { sub, positionals, default: !!v.default, local: !!v.local, options: (v.option as unknown as string[] | undefined) ?? [] });
  },
  async push(io, argv) {
    return transfer(io, argv, 'push');
  },
  async pull(io, argv) {
    return transfer(io, argv, 'pull');
  },
  async fetch(io, argv) {
    return transfer(io, argv, 'fetch');
  },
  async plots(io, argv) {
    const [sub, ...rest] = argv;
    if (sub !== 'show' && sub !== 'diff') {
      if (sub === undefined || sub === '--help' || sub === '-h') return help(io);
      throw new UserError({ message: `unknown plots command '${sub}'`, hint: 'use plots show or plots diff' });
    }
    const { values: v, positionals } = parse(rest, {
      out: { type: 'string', short: 'o' },
      exp: { type: 'string', multiple: true },
      targets: { type: 'string', short: 't', multiple: true },
      json: { type: 'boolean' },
    });
    if (v.help) return help(io);
    const { plotsCommand } = await import('./commands/plots.js');
    const list = (x: unknown) => (x as string[] | undefined) ?? [];
    return plotsCommand(io, {
      diff: sub === 'diff',
      // plots show [targets…]; plots diff [REV…] [-t target …]
      targets: sub === 'show' ? positionals : list(v.targets),
      revisions: sub === 'diff' ? positionals : [],
      experiments: list(v.exp),
      outDir: v.out as string | undefined,
      json: !!v.json,
    });
  },
  async checkout(io, argv) {
    const { values: v, positionals } = parse(argv, { force: { type: 'boolean', short: 'f' }, json: { type: 'boolean' } });
    if (v.help) return help(io);
    const { checkoutCommand } = await import('./commands/checkout.js');
    return checkoutCommand(io, { targets: positionals, force: !!v.force, json: !!v.json });
  },
  async gc(io, argv) {
    const { values: v, positionals } = parse(argv, {
      force: { type: 'boolean', short: 'f' },
      'all-branches': { type: 'boolean', short: 'a' },
      'all-tags': { type: 'boolean', short: 'T' },
      'all-commits': { type: 'boolean', short: 'A' },
      'no-experiments': { type: 'boolean' },
      json: { type: 'boolean' },
    });
    if (v.help) return help(io);
    if (positionals.length) throw new UserError({ message: `gc takes no arguments, got '${positionals[0]}'` });
    const { gcCommand } = await import('./commands/gc.js');
    return gcCommand(io, {
      force: !!v.force,
      branches: !!v['all-branches'],
      tags: !!v['all-tags'],
      commits: !!v['all-commits'],
      experiments: !v['no-experiments'],
      json: !!v.json,
    });
  },
};

async function transfer(io: Io, argv: string[], verb: 'push' | 'pull' | 'fetch'): Promise<number> {
  const { values: v, positionals } = parse(argv, {
    remote: { type: 'string', short: 'r' },
    jobs: { type: 'string', short: 'j' },
    'no-run-cache': { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (v.help) return help(io);
  const m = await import('./commands/transfer.js');
  const args = { targets: positionals, remote: v.remote as string | undefined, jobs: intOpt(v.jobs, '--jobs', 1), runCache: !v['no-run-cache'], json: !!v.json };
  if (verb === 'push') return m.pushCommand(io, args);
  return m.fetchCommand(io, args, verb === 'pull' ? 'checkout' : undefined);
}

function outputFormat(v: Flags): 'json' | 'md' | 'text' {
  if (v.json && v.md) throw new UserError({ message: 'choose one of --json and --md' });
  return v.json ? 'json' : v.md ? 'md' : 'text';
}

function help(io: Io): number {
  io.out(USAGE);
  return 0;
}

export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') return help(io);
  if (name === '--version' || name === '-V') {
    io.out('lockstep 0.1.0');
    return 0;
  }
  const handler = commands[name];
  // Compiling the hashing wasm takes a few tens of ms off-thread: start it now so it overlaps YAML parsing.
  if (name === 'repro' || name === 'status') void import('./hash/xxhash.js').then((m) => m.getHasher());
  try {
    if (!handler) throw new UserError({ message: `unknown command '${name}'`, hint: didYouMean(name, Object.keys(commands)) ?? `run 'lockstep --help'` });
    return await handler(io, rest);
  } catch (e) {
    if (e instanceof UserError) {
      for (const d of e.diagnostics) io.err(formatDiagnostic(d));
      return e.exitCode;
    }
    // A bug in lockstep itself: say so plainly; the stack only on request.
    io.err(`error: internal error: ${(e as Error)?.message ?? String(e)}`);
    if (process.env.LOCKSTEP_DEBUG) io.err((e as Error)?.stack ?? '');
    else io.err('  (set LOCKSTEP_DEBUG=1 for details, and please report it)');
    return 70;
  }
}
