import fs from 'node:fs';
import type { LockedPath } from '../lockfile.js';
import { writeFileAtomic } from '../fs-util.js';
import type { RemoteStore } from '../remote/types.js';
import { pool } from '../remote/pool.js';
import { UserError } from '../errors.js';
import { isDirHash, objectKey, runKey, fingerprintOfRunKey } from './layout.js';
import { objectsOf, missingObjects } from './checkout.js';
import { checkEntry, type RunEntry } from './run-cache.js';
import { CorruptObject, problemWithCopy } from './object-store.js';
import type { LocalCache } from './open.js';
import type { Fetcher } from './stage-cache.js';

/** One thing that could not be transferred, and why (named for the user). */
interface TransferFailure {
  readonly what: string;
  readonly why: string;
}

export interface SyncReport {
  transferred: number;
  bytes: number;
  alreadyThere: number;
  readonly failures: TransferFailure[];
  /** Outputs whose objects are not in the local cache (push) or on the remote (fetch). */
  readonly unavailable: { path: string; where: string }[];
  /** Keys whose remote copy was wrong and was uploaded again (push). */
  readonly replaced: string[];
  /** Run-cache entries left out of a push because some object they name is neither local nor on the remote (not a failure). */
  readonly entriesNotPushed: { fingerprint: string; stage: string }[];
}

const newReport = (): SyncReport => ({ transferred: 0, bytes: 0, alreadyThere: 0, failures: [], unavailable: [], replaced: [], entriesNotPushed: [] });

export interface SyncOptions {
  readonly jobs: number;
  readonly progress?: (done: number, total: number, bytes: number) => void;
}

function describe(e: unknown): string {
  const err = e as Error & { code?: string };
  return err.message || err.code || String(e);
}

/**
 * Upload what these outputs and run-cache entries need. Order matters for
 * anyone reading the remote meanwhile (or after this push is killed): file
 * objects first, then the manifests naming them, then run-cache entries naming
 * both, so whatever is visible is complete.
 *
 * Integrity both ways: every object is verified as it is about to be uploaded
 * (a damaged one is quarantined and reported, never spread), and a remote copy
 * that is not what it should be is uploaded again. Which remote copies are
 * checked: by size always (the remote says it when asked whether it has the
 * key: free), by content with `verify` (each is downloaded and hashed).
 */
export async function push(
  cache: LocalCache,
  remote: RemoteStore,
  outs: readonly { path: string; out: LockedPath }[],
  runs: readonly string[],
  opts: SyncOptions & { verify?: boolean },
): Promise<SyncReport> {
  const report = newReport();
  const files = new Set<string>();
  const manifests = new Set<string>();
  const owner = new Map<string, string>();
  const add = async (label: string, out: Pick<LockedPath, 'hash'>): Promise<boolean> => {
    const seen = cache.store.quarantined.length;
    const missing = await missingObjects(cache.store, out);
    for (const q of cache.store.quarantined.slice(seen)) report.failures.push({ what: label, why: `${new CorruptObject(q).message}; it was not pushed` });
    if (missing.length) {
      if (cache.store.quarantined.length === seen) report.unavailable.push({ path: label, where: 'the local cache' });
      return false;
    }
    for (const h of await objectsOf(cache.store, out)) {
      (isDirHash(h) ? manifests : files).add(h);
      if (!owner.has(h)) owner.set(h, label);
    }
    return true;
  };
  for (const { path, out } of outs) await add(path, out);
  const entries = await entriesToPush(cache, remote, runs, report, (h, label) => {
    (isDirHash(h) ? manifests : files).add(h);
    if (!owner.has(h)) owner.set(h, label);
  });
  const phases: { keys: string[]; file: (k: string) => string; objects: boolean }[] = [
    { keys: [...files].map(objectKey), file: (k) => cache.store.pathOf(hashOf(k)), objects: true },
    { keys: [...manifests].map(objectKey), file: (k) => cache.store.pathOf(hashOf(k)), objects: true },
    { keys: entries.map(runKey), file: (k) => cache.runs.fileOf(fingerprintOfRunKey(k)!), objects: false },
  ];
  const total = phases.reduce((n, p) => n + p.keys.length, 0);
  let done = 0;
  for (const phase of phases) {
    if (phase.keys.length === 0) continue;
    const there = await remote.existing(phase.keys);
    // Copies the remote has but that are not what their name says: uploaded again.
    const wrong = phase.objects ? await wrongRemoteCopies(cache, remote, there, opts) : new Set<string>();
    report.alreadyThere += there.size - wrong.size;
    done += there.size - wrong.size;
    await pool(
      phase.keys.filter((k) => !there.has(k) || wrong.has(k)),
      opts.jobs,
      async (key) => {
        const file = phase.file(key);
        try {
          if (phase.objects) {
            const hash = hashOf(key);
            const problem = await cache.store.problemWith(hash);
            if (problem) {
              const q = cache.store.quarantine(hash, problem);
              report.failures.push({ what: owner.get(hash) ?? hash, why: `${new CorruptObject(q).message}; it was not pushed` });
              opts.progress?.(++done, total, report.bytes);
              return;
            }
          }
          await remote.upload(key, file);
          report.transferred++;
          if (wrong.has(key)) report.replaced.push(key);
          report.bytes += fs.statSync(file).size;
        } catch (e) {
          if (e instanceof UserError) throw e; // unreachable or refused: every other key would fail the same way
          report.failures.push({ what: key, why: describe(e) });
        }
        opts.progress?.(++done, total, report.bytes);
      },
    );
    // Never publish a manifest or an entry whose parts did not all arrive.
    if (report.failures.length) break;
  }
  return report;
}

/**
 * Which run-cache entries a push publishes, and the local objects they bring
 * (handed to `use`). `pull` brings every entry on the remote but only the
 * objects the workspace's lock needs, so entries whose objects are not local
 * are normal ("remote-only"), not a failure. An entry goes up when each object
 * it names is either local (uploaded with it) or already on the remote: one
 * `existing` call for all the missing ones, and a manifest the remote has
 * vouches for its files, since a push publishes files before manifests. An
 * entry with an object on neither side is left out and said (entriesNotPushed):
 * publishing it would hand others an entry they can never restore from.
 *
 * Why not have `pull` fetch the objects of every entry it brings, as
 * `dvc pull --run-cache` does: our pull takes the run-cache by default, and
 * the remote's entries are every params combination anyone ever pushed (each
 * with its models), so that would turn every pull into a full mirror. The
 * objects of an entry are fetched when it is used (`repro --pull`); without
 * --pull such an entry is passed over and the stage runs.
 */
async function entriesToPush(
  cache: LocalCache,
  remote: RemoteStore,
  runs: readonly string[],
  report: SyncReport,
  use: (hash: string, label: string) => void,
): Promise<string[]> {
  const found: { fp: string; entry: RunEntry; missing: string[] }[] = [];
  for (const fp of runs) {
    const r = cache.runs.lookup(fp);
    if (r.kind !== 'hit') continue;
    const seen = cache.store.quarantined.length;
    const missing: string[] = [];
    for (const o of r.entry.outs) missing.push(...(await missingObjects(cache.store, o)));
    for (const q of cache.store.quarantined.slice(seen))
      report.failures.push({ what: `run-cache entry ${fp}`, why: `${new CorruptObject(q).message}; it was not pushed` });
    found.push({ fp, entry: r.entry, missing });
  }
  const wanted = [...new Set(found.flatMap((f) => f.missing))].map(objectKey);
  const there = wanted.length ? await remote.existing(wanted) : new Map<string, number | undefined>();
  const entries: string[] = [];
  for (const { fp, entry, missing } of found) {
    if (!missing.every((h) => there.has(objectKey(h)))) {
      report.entriesNotPushed.push({ fingerprint: fp, stage: entry.stage });
      continue;
    }
    for (const o of entry.outs) {
      // An output with missing parts is known from the remote; only what is here goes up.
      if (missing.includes(o.hash)) continue;
      for (const h of await objectsOf(cache.store, o)) if (!missing.includes(h)) use(h, `${o.path} (run-cache entry ${fp})`);
    }
    entries.push(fp);
  }
  return entries;
}

/**
 * Keys the remote has whose copy is wrong: a size that differs from the local
 * object's, or with `verify`, content that does not hash to the key's name.
 */
async function wrongRemoteCopies(
  cache: LocalCache,
  remote: RemoteStore,
  there: ReadonlyMap<string, number | undefined>,
  opts: SyncOptions & { verify?: boolean },
): Promise<Set<string>> {
  const wrong = new Set<string>();
  const check: string[] = [];
  for (const [key, size] of there) {
    if (size !== undefined && size !== cache.store.size(hashOf(key))) wrong.add(key);
    else if (opts.verify) check.push(key);
  }
  await pool(check, opts.jobs, async (key) => {
    const tmp = cache.store.tempPath();
    try {
      await remote.download(key, tmp);
      if (await problemWithCopy(tmp, hashOf(key))) wrong.add(key);
    } catch (e) {
      if (e instanceof UserError) throw e;
      wrong.add(key); // listed but unreadable: upload it again
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  });
  return wrong;
}

function hashOf(key: string): string {
  const m = /^files\/xxh64\/([0-9a-f]{2})\/(.+)$/.exec(key)!;
  return m[1]! + m[2]!;
}

/**
 * Download objects into the local cache. Each one is verified against its
 * hash before it enters the cache; one that does not match is refused and
 * reported, and never reaches the workspace.
 */
export async function fetchObjects(
  cache: LocalCache,
  remote: RemoteStore,
  hashes: readonly string[],
  opts: SyncOptions & { readonly report: SyncReport; /** How a failure names the object (an output path, a log). */ readonly label: (hash: string) => string },
): Promise<void> {
  const { report, label } = opts;
  const wanted = [...new Set(hashes)].filter((h) => !cache.store.has(h));
  let done = 0;
  await pool(wanted, opts.jobs, async (hash) => {
    const tmp = cache.store.tempPath();
    try {
      await remote.download(objectKey(hash), tmp);
      const size = fs.statSync(tmp).size;
      const problem = await cache.store.admit(tmp, hash);
      if (problem) report.failures.push({ what: label(hash), why: `object ${hash} from remote '${remote.name}' ${problem}; it was not used` });
      else {
        report.transferred++;
        report.bytes += size;
      }
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      if (e instanceof UserError) throw e;
      report.failures.push({ what: label(hash), why: `object ${hash}: ${describe(e)}` });
    }
    opts.progress?.(++done, wanted.length, report.bytes);
  });
}

/** Bring the objects of these outputs into the local cache (manifests first: they name the files). */
export async function fetchOutputs(
  cache: LocalCache,
  remote: RemoteStore,
  outs: readonly { path: string; out: LockedPath }[],
  opts: SyncOptions & { readonly report?: SyncReport },
): Promise<SyncReport> {
  const report = opts.report ?? newReport();
  const owner = new Map<string, string>();
  for (let round = 0; round < 2; round++) {
    const need: string[] = [];
    for (const { path, out } of outs) {
      for (const h of await missingObjects(cache.store, out)) {
        need.push(h);
        if (!owner.has(h)) owner.set(h, path);
      }
    }
    if (need.length === 0) break;
    const failedBefore = report.failures.length;
    await fetchObjects(cache, remote, need, { ...opts, report, label: (h) => owner.get(h) ?? h });
    if (report.failures.length > failedBefore && round === 0) {
      // A manifest that failed leaves its files unknown; the next round would only fail again.
      if (!need.some((h) => isDirHash(h) && cache.store.has(h))) break;
    }
  }
  for (const { path, out } of outs) {
    if ((await missingObjects(cache.store, out)).length && !report.failures.some((f) => f.what === path)) {
      report.unavailable.push({ path, where: `remote '${remote.name}'` });
    }
  }
  return report;
}

/** Copy a run-cache entry from the remote when it is well-formed (trust is checked again when it is used). */
async function fetchRunEntry(cache: LocalCache, remote: RemoteStore, fp: string, report: SyncReport): Promise<boolean> {
  const tmp = cache.store.tempPath();
  try {
    try {
      await remote.download(runKey(fp), tmp);
    } catch (e) {
      if (e instanceof UserError) throw e;
      return false; // absent on the remote: nothing to use
    }
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(tmp, 'utf8'));
    } catch {
      raw = undefined;
    }
    // Shape only here; the signature is checked where the entry is used.
    const why = raw === undefined ? 'it is not valid JSON' : checkEntry(raw, fp, { readOnly: true });
    if (why) {
      report.failures.push({ what: `run-cache entry ${fp}`, why: `from remote '${remote.name}': ${why}` });
      return false;
    }
    writeFileAtomic(cache.runs.fileOf(fp), JSON.stringify(raw as RunEntry, null, 1) + '\n', { durable: false });
    report.transferred++;
    return true;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** Every run-cache entry the remote has and we lack. */
export async function fetchRunEntries(cache: LocalCache, remote: RemoteStore, opts: SyncOptions, report: SyncReport): Promise<void> {
  const fps = (await remote.list('runs/')).map(fingerprintOfRunKey).filter((f): f is string => !!f && !cache.runs.has(f));
  await pool(fps, opts.jobs, async (fp) => void (await fetchRunEntry(cache, remote, fp, report)));
}

/** What `repro --pull` uses: objects and entries fetched as stages ask for them. */
export function remoteFetcher(cache: LocalCache, remote: RemoteStore, opts: SyncOptions, warn: (message: string) => void): Fetcher {
  const report = newReport();
  let gone = false;
  // A remote that cannot be reached is said once; the stages that needed it then simply run.
  const guarded = async (work: () => Promise<unknown>) => {
    if (gone) return;
    try {
      await work();
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      gone = true;
      warn(`${e.message}; stages whose outputs are not here will run`);
    }
    for (const f of report.failures.splice(0)) warn(`${f.what}: ${f.why}`);
  };
  return {
    objects: (hashes) => guarded(() => fetchObjects(cache, remote, hashes, { ...opts, report, label: (h) => h })),
    runEntry: (fp) => guarded(() => fetchRunEntry(cache, remote, fp, report)),
  };
}

export { newReport };
