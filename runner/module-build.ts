import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';
import { writeFileAtomic } from './fs-util.js';
import { hashString } from './hash/xxhash.js';
import { sameSig, settled, sigOf, SIG_WIDTH, type Sig } from './hash/signature.js';

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

function statKey(file: string): Sig | undefined {
  try {
    return sigOf(fs.statSync(file));
  } catch {
    return undefined;
  }
}

/** Never any file's signature: a source changed too recently to trust is compiled again next time. */
const UNSETTLED: Sig = [-1, 0, 0, 0];

async function build(root: string, stateDir: string, modulePath: string): Promise<BuildRecord> {
  const buildStart = Date.now();
  const entry = path.resolve(root, modulePath);
  if (!fs.existsSync(entry)) {
    throw new UserError({ message: `stage module '${modulePath}' does not exist` });
  }
  const id = (await hashString(entry)).slice(0, 16);
  const dir = path.join(stateDir, 'build');
  const recordFile = path.join(dir, `${id}.json`);
  const output = path.join(dir, `${id}.mjs`);
  try {
    const rec = JSON.parse(fs.readFileSync(recordFile, 'utf8')) as BuildRecord;
    const fresh =
      fs.existsSync(rec.output) &&
      Object.entries(rec.inputs).every(([f, k]) => {
        const now = statKey(f);
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
    const k = statKey(abs);
    if (k) inputs[abs] = settled(k, buildStart) ? k : UNSETTLED;
  }
  const rec: BuildRecord = { inputs, output };
  writeFileAtomic(recordFile, JSON.stringify(rec));
  return rec;
}
