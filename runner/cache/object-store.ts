import fs from 'node:fs';
import path from 'node:path';
import { copyFileHashing, hashFile } from '../hash/xxhash.js';
import { manifestHash, type ManifestEntry } from '../hash/tree.js';
import { errnoCode } from '../fs-util.js';
import { EXIT, UserError } from '../errors.js';
import { isDirHash, objectKey, hashOfObjectKey } from './layout.js';
import { parseManifest, serializeManifest } from './manifest.js';

import type { LinkType } from './settings.js';
export type { LinkType } from './settings.js';

/**
 * The exit code of a command stopped by a damaged cache object (checkout,
 * `cache verify`). Not 2: the user's input is fine, the cache is not.
 */
export const EXIT_DAMAGED_CACHE = EXIT.failure;

/** An object moved out of the cache because its content does not match its name. */
export interface Quarantined {
  readonly hash: string;
  /** What is wrong with it, e.g. "has content hash …, not …". */
  readonly problem: string;
  /** Where it now lies (kept, never deleted: it may be someone's only copy of something). */
  readonly movedTo: string;
}

/** An object in the cache that failed verification: it was quarantined and never reached the workspace. */
export class CorruptObject extends UserError {
  constructor(readonly q: Quarantined) {
    super(
      {
        message: `object ${q.hash} in the cache is damaged: it ${q.problem}; moved to ${shown(q.movedTo)}`,
        hint: `'lockstep cache verify --repair' fetches a good copy from the remote, or rerun the stage that makes it`,
      },
      EXIT_DAMAGED_CACHE,
    );
  }
}

/** A path for messages: relative to the current folder when it is inside it. */
function shown(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}

/**
 * The content-addressed object store: files by content hash, directory
 * manifests by manifest hash. Objects are read-only and enter only whole and
 * verified (temp file in the store, hash checked, rename), so a crash or a bad
 * download never leaves a wrong object under a right name.
 */
export class ObjectStore {
  private readonly tmpDir: string;
  /** Where damaged objects are moved to. */
  readonly quarantineDir: string;
  /** Objects this process found damaged and moved aside, in order (commands report them). */
  readonly quarantined: Quarantined[] = [];

  constructor(readonly dir: string) {
    this.tmpDir = path.join(dir, 'tmp');
    this.quarantineDir = path.join(dir, 'quarantine');
  }

  pathOf(hash: string): string {
    return path.join(this.dir, objectKey(hash));
  }

  has(hash: string): boolean {
    return fs.existsSync(this.pathOf(hash));
  }

  /** A fresh temp path on the store's filesystem, so a rename into place is atomic. */
  /** Folders known to exist: creating them once per run saves thousands of syscalls for many small objects. */
  private readonly made = new Set<string>();

  private ensureDir(dir: string): void {
    if (this.made.has(dir)) return;
    fs.mkdirSync(dir, { recursive: true });
    this.made.add(dir);
  }

  tempPath(): string {
    this.ensureDir(this.tmpDir);
    return path.join(this.tmpDir, `${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  }

  /**
   * Store a workspace file under its hash. With `hardlink` the object shares the
   * file's inode (no copy); otherwise it is copied. Either way the result is
   * re-hashed, so a file changed since it was hashed is refused, not stored wrong.
   */
  async addFile(src: string, hash: string, link: LinkType, label: string): Promise<void> {
    // A present object is trusted only once it verifies: a rerun is how a damaged one gets replaced.
    if (this.has(hash)) {
      const problem = await this.problemWith(hash, fs.statSync(src).size);
      if (!problem) return;
      this.quarantine(hash, problem);
    }
    const tmp = this.tempPath();
    let committed = false;
    try {
      let got: string;
      if (link === 'copy') {
        // Hashes the bytes it writes (a small file from one buffer, read once), created read-only.
        got = (await copyFileHashing(src, tmp, 0o444)).hash;
      } else {
        if (link === 'hardlink') {
          try {
            fs.linkSync(src, tmp);
          } catch {
            fs.copyFileSync(src, tmp); // across filesystems a hard link is impossible
          }
        } else {
          fs.copyFileSync(src, tmp, fs.constants.COPYFILE_FICLONE);
        }
        got = (await hashFile(tmp)).hash;
      }
      if (got !== hash)
        throw new UserError({
          message: `'${label}' changed while it was being saved to the cache`,
          hint: 'run the stage again once nothing else writes to it',
        });
      this.commit(tmp, hash, link === 'copy');
      committed = true;
    } finally {
      if (!committed) fs.rmSync(tmp, { force: true });
    }
  }

  async addManifest(entries: readonly ManifestEntry[]): Promise<string> {
    const hash = await manifestHash(entries);
    if (this.has(hash)) {
      const problem = await this.problemWith(hash);
      if (problem) this.quarantine(hash, problem);
    }
    if (!this.has(hash)) {
      const tmp = this.tempPath();
      try {
        fs.writeFileSync(tmp, serializeManifest(entries));
        this.commit(tmp, hash);
      } finally {
        fs.rmSync(tmp, { force: true });
      }
    }
    return hash;
  }

  /**
   * Read and verify a directory manifest. Undefined when absent; a damaged one
   * is quarantined and CorruptObject thrown.
   */
  async readManifest(hash: string): Promise<ManifestEntry[] | undefined> {
    let text: string;
    try {
      text = fs.readFileSync(this.pathOf(hash), 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw e;
    }
    const r = await parseManifest(text, hash);
    if (!r.ok) throw new CorruptObject(this.quarantine(hash, r.problem));
    return r.entries;
  }

  /**
   * What is wrong with a stored object, or undefined when it verifies: a file
   * object must hash to its name (and have `size` when given: a cheap first
   * test), a manifest must parse and hash to its name.
   */
  async problemWith(hash: string, size?: number): Promise<string | undefined> {
    const file = this.pathOf(hash);
    try {
      if (size !== undefined && !isDirHash(hash)) {
        const got = fs.statSync(file).size;
        if (got !== size) return `has ${got} bytes, not ${size}`;
      }
      return await problemWithCopy(file, hash);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return 'is missing';
      throw e;
    }
  }

  /**
   * Write object `hash` at `dest` (a fresh temp path) as `link` says, verifying
   * it on the way: a copy is hashed while it is made, an object about to be
   * linked or cloned is hashed first. A damaged object is quarantined and
   * CorruptObject thrown; nothing is left at `dest`.
   */
  async materialize(hash: string, dest: string, link: LinkType): Promise<void> {
    const src = this.pathOf(hash);
    let got: string;
    try {
      if (link === 'copy') got = (await copyFileHashing(src, dest)).hash;
      else {
        got = (await hashFile(src)).hash;
        if (got === hash) {
          if (link === 'hardlink') {
            try {
              fs.linkSync(src, dest);
            } catch {
              got = (await copyFileHashing(src, dest)).hash; // across filesystems a hard link is impossible
            }
          } else {
            fs.copyFileSync(src, dest, fs.constants.COPYFILE_FICLONE);
            // Copies are the user's to edit; only the cache's own objects stay read-only.
            fs.chmodSync(dest, 0o644);
          }
        }
      }
    } catch (e) {
      fs.rmSync(dest, { force: true });
      throw e;
    }
    if (got !== hash) {
      fs.rmSync(dest, { force: true });
      throw new CorruptObject(this.quarantine(hash, `has content hash ${got}, not ${hash}`));
    }
  }

  /** Move a damaged object out of the store (kept under quarantine/, never deleted) and remember it. */
  quarantine(hash: string, problem: string): Quarantined {
    fs.mkdirSync(this.quarantineDir, { recursive: true });
    let movedTo = path.join(this.quarantineDir, hash);
    if (fs.existsSync(movedTo)) movedTo += `.${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;
    try {
      fs.renameSync(this.pathOf(hash), movedTo);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e; // already moved aside (by another process)
    }
    const q = { hash, problem, movedTo };
    this.quarantined.push(q);
    return q;
  }

  /**
   * Admit a downloaded file as object `hash` only if its content matches.
   * Returns the problem when it does not (the temp file is removed either way).
   */
  async admit(tmp: string, hash: string): Promise<string | undefined> {
    try {
      const problem = await problemWithCopy(tmp, hash);
      if (problem) return problem;
      if (!this.has(hash)) this.commit(tmp, hash);
      return undefined;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  /** Every object hash in the store (for gc). */
  list(): string[] {
    return listFanOut(path.join(this.dir, 'files', 'xxh64'), (fan, rest) => hashOfObjectKey(`files/xxh64/${fan}/${rest}`));
  }

  size(hash: string): number {
    try {
      return fs.statSync(this.pathOf(hash)).size;
    } catch {
      return 0;
    }
  }

  remove(hash: string): void {
    fs.rmSync(this.pathOf(hash), { force: true });
  }

  /**
   * Leftovers of interrupted writes. Temp names start with the writer's pid;
   * an entry whose writer still runs (a `repro` of a running experiment sharing
   * this cache) is being written right now and is kept, as is the folder itself.
   */
  clearTemp(writerAlive: (pid: number) => boolean): number {
    let names: string[];
    try {
      names = fs.readdirSync(this.tmpDir);
    } catch {
      return 0;
    }
    let removed = 0;
    for (const n of names) {
      const pid = /^(\d+)-/.exec(n)?.[1];
      if (pid !== undefined && writerAlive(Number(pid))) continue;
      fs.rmSync(path.join(this.tmpDir, n), { recursive: true, force: true });
      removed++;
    }
    return removed;
  }

  private commit(tmp: string, hash: string, readOnly = false): void {
    const dest = this.pathOf(hash);
    this.ensureDir(path.dirname(dest));
    if (!readOnly) fs.chmodSync(tmp, 0o444);
    fs.renameSync(tmp, dest);
  }
}

/** What is wrong with a file that should be object `hash` (a download, a remote copy), or undefined. */
export async function problemWithCopy(file: string, hash: string): Promise<string | undefined> {
  if (isDirHash(hash)) {
    const r = await parseManifest(fs.readFileSync(file, 'utf8'), hash);
    return r.ok ? undefined : r.problem;
  }
  const got = await hashFile(file);
  return got.hash === hash ? undefined : `has content hash ${got.hash}, not ${hash} (corrupted or tampered with)`;
}

/** Names in a two-level fan-out folder (`base/ab/rest`), mapped through `parse`; those it rejects are skipped. */
export function listFanOut(base: string, parse: (fan: string, name: string) => string | undefined): string[] {
  const out: string[] = [];
  let fans: string[];
  try {
    fans = fs.readdirSync(base);
  } catch {
    return out;
  }
  for (const fan of fans) {
    for (const name of fs.readdirSync(path.join(base, fan))) {
      const id = parse(fan, name);
      if (id) out.push(id);
    }
  }
  return out;
}
