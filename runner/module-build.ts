import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';
import { writeFileAtomic } from './fs-util.js';
import { hashString } from './hash/xxhash.js';
import { sameSig, settled, sigOfPath, SIG_WIDTH, type Sig } from './hash/signature.js';

/**
 * Stage modules are compiled once with esbuild (relative imports bundled,
 * packages left to Node's resolver) and reused while none of their source
 * files changed. This keeps a TS stage's start-up to a plain `node` start,
 * instead of paying a TS loader on every run.
 */
interface BuildRecord {
  /** Each source file's stat signature when it was compiled. */
  readonly inputs: Record<string, Sig>;
  readonly output: string;
  /** The module's absolute path (what the record's file name is derived from); absent in records of older versions. */
  readonly entry?: string;
}

const inFlight = new Map<string, Promise<BuildRecord>>();

/** The compiled module (built now if a source changed since the last build). */
export async function buildModule(root: string, stateDir: string, modulePath: string): Promise<string> {
  return (await built(root, stateDir, modulePath)).output;
}

/**
 * The repository files a module stage's code is made of: its import closure,
 * exactly the files the bundler read (packages from node_modules are not
 * bundled, so they are not among them), repository-relative and sorted. They
 * are inputs of the stage like its declared deps, so editing a helper that
 * only one stage imports reruns that stage alone, and one no stage imports
 * reruns nothing. While nothing changed this costs a stat per file (the
 * build record is fresh); after an edit, the rebuild that running needs anyway.
 */
export async function moduleSources(root: string, stateDir: string, modulePath: string): Promise<string[]> {
  const rec = await built(root, stateDir, modulePath);
  return Object.keys(rec.inputs)
    .map((abs) => path.relative(root, abs).split(path.sep).join('/'))
    .filter((rel) => !rel.startsWith('../') && !path.isAbsolute(rel) && !rel.split('/').includes('node_modules'))
    .sort();
}

function built(root: string, stateDir: string, modulePath: string): Promise<BuildRecord> {
  const key = path.resolve(root, modulePath);
  let p = inFlight.get(key);
  if (!p) {
    p = build(root, stateDir, modulePath);
    inFlight.set(key, p);
    p.catch(() => inFlight.delete(key));
  }
  return p;
}

/** Never any file's signature: a source changed too recently to trust is compiled again next time. */
const UNSETTLED: Sig = [-1, 0, 0, 0];

async function build(root: string, stateDir: string, modulePath: string): Promise<BuildRecord> {
  const buildStart = Date.now();
  const entry = path.resolve(root, modulePath);
  if (!fs.existsSync(entry)) {
    throw new UserError({ message: `stage module '${modulePath}' does not exist` });
  }
  const { recordFile, output } = await buildFiles(stateDir, entry);
  try {
    const rec = JSON.parse(fs.readFileSync(recordFile, 'utf8')) as BuildRecord;
    const fresh =
      fs.existsSync(rec.output) &&
      Object.entries(rec.inputs).every(([f, k]) => {
        const now = sigOfPath(f);
        return now !== undefined && Array.isArray(k) && k.length === SIG_WIDTH && sameSig(k, 0, now);
      });
    if (fresh) return rec;
  } catch {
    // no usable record: build
  }
  const esbuild = await import('esbuild');
  let result;
  try {
    result = await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      sourcemap: 'inline',
      write: false,
      metafile: true,
      logLevel: 'silent',
      outfile: output,
      absWorkingDir: root,
    });
  } catch (e) {
    const errors = (e as { errors?: { text: string; location?: { file: string; line: number; column: number } | null }[] }).errors ?? [];
    throw new UserError(
      errors.length
        ? errors.map((er) => ({
            message: er.location ? er.text : `cannot compile stage module '${modulePath}': ${er.text}`,
            ...(er.location ? { location: { file: er.location.file, line: er.location.line, column: er.location.column + 1 } } : {}),
          }))
        : [{ message: `cannot compile stage module '${modulePath}': ${(e as Error).message}` }],
    );
  }
  for (const f of result.outputFiles) writeFileAtomic(f.path, f.contents);
  const inputs: Record<string, Sig> = {};
  for (const rel of Object.keys(result.metafile.inputs)) {
    const abs = path.resolve(root, rel);
    const k = sigOfPath(abs);
    if (k) inputs[abs] = settled(k, buildStart) ? k : UNSETTLED;
  }
  const rec: BuildRecord = { inputs, output, entry };
  writeFileAtomic(recordFile, JSON.stringify(rec));
  return rec;
}

async function buildFiles(stateDir: string, entry: string): Promise<{ recordFile: string; output: string }> {
  const id = (await hashString(entry)).slice(0, 16);
  const dir = path.join(stateDir, 'build');
  return { recordFile: path.join(dir, `${id}.json`), output: path.join(dir, `${id}.mjs`) };
}

/**
 * Give a fresh copy of the repository (an experiment's temporary workspace)
 * this one's builds, so it does not bundle every stage module again. A build
 * is carried over only when each of its inputs inside `fromRoot` still has
 * the size and mtime it was built from — checked after the copy was made, so
 * the copy holds the same content — and its copy exists with the same size;
 * the copy's own stat is recorded, so it is fresh there. The bundle itself is
 * the same for both: esbuild writes paths relative to the root. Anything
 * unexpected just leaves that build out (the copy builds it, as before).
 */
export async function shareBuilds(fromRoot: string, fromStateDir: string, toRoot: string, toStateDir: string): Promise<void> {
  const dir = path.join(fromStateDir, 'build');
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return; // nothing built yet
  }
  const move = (abs: string) => {
    const rel = path.relative(fromRoot, abs);
    return rel.startsWith('..') || path.isAbsolute(rel) ? abs : path.join(toRoot, rel);
  };
  for (const name of names) {
    try {
      const rec = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as BuildRecord;
      if (!rec.entry || !fs.existsSync(rec.output)) continue;
      const inputs: Record<string, Sig> = {};
      const same = Object.entries(rec.inputs).every(([f, k]) => {
        const now = sigOfPath(f);
        const there = sigOfPath(move(f));
        // The source is as it was built (its whole signature), and its copy has its size. The copy's own
        // signature is recorded although it is seconds old at most: the copy was written just now from that
        // unchanged source, and nothing else writes into a throw-away copy before its repro reads it.
        if (!now || !there || !Array.isArray(k) || k.length !== SIG_WIDTH || !sameSig(k, 0, now) || there[0] !== k[0]) return false;
        inputs[move(f)] = there;
        return true;
      });
      if (!same) continue;
      const files = await buildFiles(toStateDir, move(rec.entry));
      fs.mkdirSync(path.dirname(files.output), { recursive: true });
      fs.copyFileSync(rec.output, files.output);
      // A cache entry in a throw-away copy, checked whenever it is read: no flush to disk.
      writeFileAtomic(files.recordFile, JSON.stringify({ inputs, output: files.output, entry: move(rec.entry) } satisfies BuildRecord), { durable: false });
    } catch {
      // unreadable or changing under us: the copy builds this one itself
    }
  }
}
