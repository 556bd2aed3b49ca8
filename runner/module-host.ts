/**
 * Entry point of the child process that runs one TypeScript stage module.
 * argv: <compiled module>; env LOCKSTEP_CONTEXT_FILE: the JSON context.
 * Or argv `--wait`: started ahead of time, it reads the job as one JSON line on stdin.
 */
import fs from 'node:fs';
import path from 'node:path';
import { contentHash } from './hash/xxhash.js';
import { pathToFileURL } from 'node:url';
import type { StageContext, StageModule } from './module-contract.js';

interface ContextData {
  stage: string;
  root: string;
  wdir: string;
  module: string;
  params: StageContext['params'];
  deps: string[];
  outs: string[];
  metrics: string[];
  plots: string[];
}

/** A job handed to a host that was started ahead of time (`--wait`): where and as which stage to run. */
interface Job {
  compiled: string;
  ctxFile: string;
  cwd: string;
  env: Record<string, string>;
}

/** The first line on stdin; the engine starts hosts early so node's start-up overlaps its own work. */
function readJob(): Promise<Job | undefined> {
  return new Promise((resolve) => {
    let buf = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        process.stdin.pause();
        resolve(JSON.parse(buf.slice(0, nl)) as Job);
      }
    });
    process.stdin.on('end', () => resolve(undefined)); // never used: the engine closed us
  });
}

function externalDeps(): Record<string, string> {
  try {
    return JSON.parse(process.env.LOCKSTEP_EXTERNAL_DEPS ?? '{}') as Record<string, string>;
  } catch {
    return {};
  }
}

async function main(): Promise<number> {
  let compiled = process.argv[2];
  let ctxFile = process.env.LOCKSTEP_CONTEXT_FILE;
  if (compiled === '--wait') {
    const job = await readJob();
    if (!job) return 0;
    process.chdir(job.cwd);
    Object.assign(process.env, job.env);
    compiled = job.compiled;
    ctxFile = job.ctxFile;
    process.stdin.destroy();
  }
  if (!compiled || !ctxFile) {
    process.stderr.write('error: lockstep module host started without a module or context\n');
    return 2;
  }
  const data = JSON.parse(fs.readFileSync(ctxFile, 'utf8')) as ContextData;
  const mod = (await import(pathToFileURL(compiled).href)) as { default?: unknown; run?: unknown };
  const fn = (typeof mod.default === 'function' ? mod.default : mod.run) as StageModule | undefined;
  if (typeof fn !== 'function') {
    process.stderr.write(`error: stage module ${data.module} must export a default function (or a function named run)\n`);
    return 2;
  }
  const ctx: StageContext = {
    stage: data.stage,
    root: data.root,
    wdir: data.wdir,
    params: data.params,
    deps: data.deps,
    outs: data.outs,
    metrics: data.metrics,
    plots: data.plots,
    // An external dep (a URL) resolves to the copy the engine fetched into the cache for this run.
    resolve: (p) => externalDeps()[p] ?? path.resolve(data.wdir, p),
    log: (m) => void process.stdout.write(m.endsWith('\n') ? m : m + '\n'),
    contentHash,
  };
  await fn(ctx);
  return 0;
}

/** The language's own errors (a TypeError is a bug, not a failure anyone planned for): always shown with their location. */
const BUILT_IN_ERRORS = new Set<unknown>([Error, TypeError, RangeError, ReferenceError, SyntaxError, EvalError, URIError, AggregateError]);

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    // The stage's own failure: its message, and where in the user's code it was thrown. A failure the stage
    // anticipated (thrown as its own Error subclass, e.g. "cannot download …, point ingest at a local copy")
    // is said to its user, for whom a code location is noise; anything else may be a bug in the stage.
    const err = e instanceof Error ? e : new Error(String(e));
    const anticipated = err instanceof Error && !BUILT_IN_ERRORS.has(err.constructor) && Object.getPrototypeOf(err.constructor) === Error;
    const frame = anticipated
      ? undefined
      : err.stack?.split('\n').find((l) => /\.(ts|js|mjs):\d+/.test(l) && !l.includes('node:internal') && !l.includes('module-host'));
    process.stderr.write(`error: ${err.message}${frame ? `\n    ${frame.trim()}` : ''}\n`);
    if (process.env.LOCKSTEP_DEBUG) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  },
);
