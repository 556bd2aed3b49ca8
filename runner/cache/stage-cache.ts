import path from 'node:path';
import type { Stage } from '../stage.js';
import type { LockEntry, LockedPath } from '../lockfile.js';
import type { TreeHasher } from '../hash/tree.js';
import { lockFingerprint, toLocked, type Inputs, type Observed } from '../observe.js';
import type { CacheHooks, Restored } from '../executor.js';
import { checkoutOut, missingObjects, unshareLinks } from './checkout.js';
import { CorruptObject, type LinkType, type ObjectStore } from './object-store.js';
import type { RunCache } from './run-cache.js';
import { ensureGitIgnored } from '../gitignore.js';

/** Brings objects and run-cache entries from a remote on demand (repro --pull). */
export interface Fetcher {
  objects(hashes: readonly string[]): Promise<void>;
  runEntry(fingerprint: string): Promise<void>;
}

interface Candidate {
  readonly outs: readonly LockedPath[];
  readonly log: string;
  readonly from: Restored['from'];
}

/**
 * The engine's cache: saves what a stage produced, and when a stale stage's
 * inputs were seen before (in pipeline.lock or in the run-cache), restores
 * its outputs instead of running it.
 */
export interface StageCacheOptions {
  /** The repository root outputs are relative to. */
  readonly root: string;
  readonly store: ObjectStore;
  readonly runs: RunCache;
  /** How restored files are placed (copy, hard link, …). */
  readonly link: LinkType;
  readonly hasher: TreeHasher;
  /** A problem with one stage's cached copy (a damaged object, an ignored run-cache entry): said, then the stage runs. */
  readonly warn: (stage: string, message: string) => void;
  /** Restore from the run-cache too, not only from pipeline.lock (off with --no-run-cache). */
  readonly useRunCache: boolean;
  /** repro --pull: where missing objects and run-cache entries come from. */
  readonly fetcher?: Fetcher;
}

export class StageCache implements CacheHooks {
  private readonly root: string;
  private readonly store: ObjectStore;
  private readonly runs: RunCache;
  private readonly link: LinkType;
  private readonly hasher: TreeHasher;
  private readonly warn: (stage: string, message: string) => void;
  private readonly useRunCache: boolean;
  private readonly fetcher?: Fetcher;

  constructor(opts: StageCacheOptions) {
    this.root = opts.root;
    this.store = opts.store;
    this.runs = opts.runs;
    this.link = opts.link;
    this.hasher = opts.hasher;
    this.warn = opts.warn;
    this.useRunCache = opts.useRunCache;
    this.fetcher = opts.fetcher;
  }

  async restore(stage: Stage, fp: string, lockEntry: LockEntry | undefined): Promise<Restored | undefined> {
    const candidates: Candidate[] = [];
    if (lockEntry && samePaths(lockEntry.outs, stage) && (await lockFingerprint(lockEntry)) === fp) {
      candidates.push({ outs: lockEntry.outs, log: '', from: 'cache' });
    }
    if (this.useRunCache && stage.outs.length > 0) {
      if (this.fetcher && !this.runs.has(fp)) await this.fetcher.runEntry(fp);
      const r = this.runs.lookup(fp);
      if (r.kind === 'ignored') this.warn(stage.name, `ignoring run-cache entry ${fp}: ${r.why}`);
      if (r.kind === 'hit' && samePaths(r.entry.outs, stage)) candidates.push({ outs: r.entry.outs, log: r.entry.log, from: 'run-cache' });
    }
    for (const c of candidates) {
      const stale = await this.differing(c.outs);
      // A damaged object is quarantined on the way out; a second attempt can then fetch a good copy (--pull).
      for (let attempt = 0; attempt < 2; attempt++) {
        const seen = this.store.quarantined.length;
        const ok = (await this.available(stale)) && (await this.checkout(stale));
        for (const q of this.store.quarantined.slice(seen)) {
          this.warn(stage.name, `object ${q.hash} in the cache is damaged (it ${q.problem}); moved to ${path.relative(this.root, q.movedTo)}`);
        }
        if (ok) return { outs: [...c.outs], log: c.log, from: c.from };
        if (this.store.quarantined.length === seen) break; // simply not available: try the next candidate
      }
    }
    return undefined;
  }

  /** Put these outputs back; false when an object turned out damaged (the stage then runs instead). */
  private async checkout(outs: readonly LockedPath[]): Promise<boolean> {
    try {
      for (const o of outs) await checkoutOut(this.store, this.root, o, this.link);
      return true;
    } catch (e) {
      if (e instanceof CorruptObject) return false;
      throw e;
    }
  }

  /**
   * Download the stage's external deps (the versions its inputs were checked at) into the cache, and
   * tell the stage where they are: LOCKSTEP_EXTERNAL_DEPS (JSON, URL → file), and LOCKSTEP_EXTERNAL_DEP
   * when there is just one.
   */
  async external(stage: Stage, inputs: Inputs): Promise<Record<string, string>> {
    const { fetchExternal } = await import('../external.js');
    const files: Record<string, string> = {};
    for (const d of inputs.deps) {
      if (!stage.deps.find((x) => x.path === d.path)?.external || d.state.kind !== 'file' || !d.state.etag) continue;
      files[d.path] = await fetchExternal(d.path, d.state.etag, this.store, this.store.dir);
    }
    const list = Object.values(files);
    return { LOCKSTEP_EXTERNAL_DEPS: JSON.stringify(files), ...(list.length === 1 ? { LOCKSTEP_EXTERNAL_DEP: list[0]! } : {}) };
  }

  async beforeRun(stage: Stage): Promise<void> {
    if (this.link !== 'hardlink') return;
    for (const o of stage.outs) if (o.persist) unshareLinks(path.join(this.root, o.path));
  }

  async saved(stage: Stage, fp: string | undefined, outs: readonly Observed[], log: string): Promise<void> {
    for (const o of outs) await this.save(o);
    // Cached outputs stay out of git as DVC keeps them: a `/name` line in the .gitignore beside them.
    ensureGitIgnored(
      this.root,
      stage.outs.filter((o) => o.cache).map((o) => o.path),
    );
    // Uncached outs (metrics kept in git) are stored too, so a run-cache hit can restore everything the stage made.
    if (fp && this.useRunCache && outs.length > 0 && !stage.alwaysChanged) {
      this.runs.record(
        stage.name,
        fp,
        outs.map((o) => toLocked(o)!),
        log,
      );
    }
  }

  /** Store one observed output (a file, or a directory's files plus its manifest). */
  async save(o: Observed): Promise<void> {
    const s = o.state;
    const abs = path.join(this.root, o.path);
    if (s.kind === 'file') await this.store.addFile(abs, s.hash, this.link, o.path);
    else if (s.kind === 'dir') {
      for (const e of s.manifest) await this.store.addFile(path.join(abs, e.relpath), e.hash, this.link, `${o.path}/${e.relpath}`);
      await this.store.addManifest(s.manifest);
    }
  }

  /** Outputs whose workspace content is not what `outs` records. */
  private async differing(outs: readonly LockedPath[]): Promise<LockedPath[]> {
    const out: LockedPath[] = [];
    for (const o of outs) {
      const now = await this.hasher.hashPath(path.join(this.root, o.path));
      if (now.kind === 'missing' || now.hash !== o.hash) out.push(o);
    }
    return out;
  }

  /** Whether every object these outputs need is in the local cache, fetching what is not when a remote is at hand. */
  private async available(outs: readonly LockedPath[]): Promise<boolean> {
    // Rounds: a directory's manifest must arrive before its files are known.
    for (let round = 0; ; round++) {
      const missing: string[] = [];
      for (const o of outs) missing.push(...(await missingObjects(this.store, o)));
      if (missing.length === 0) return true;
      if (!this.fetcher || round === 2) return false;
      await this.fetcher.objects([...new Set(missing)]);
    }
  }
}

function samePaths(outs: readonly LockedPath[], stage: Stage): boolean {
  return outs.length === stage.outs.length && stage.outs.every((o) => outs.some((l) => l.path === o.path));
}
