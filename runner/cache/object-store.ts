import fs from 'node:fs';
import path from 'node:path';
import { hashFile } from '../hash/xxhash.js';
import { manifestHash, type ManifestEntry } from '../hash/tree.js';
import { errnoCode } from '../fs-util.js';
import { UserError } from '../errors.js';
import { isDirHash, objectKey, hashOfObjectKey } from './layout.js';
import { parseManifest, serializeManifest } from './manifest.js';

import type { LinkType } from './settings.js';
export type { LinkType } from './settings.js';

/** An object that failed verification: it never reaches the cache or the workspace. */
export class CorruptObject extends UserError {
  constructor(readonly hash: string, where: string, problem: string) {
    super({ message: `object ${hash} ${where} ${problem}`, hint: `it was not used; remove it and push a good copy, or rerun the stage that makes it` });
  }
}

/**
 * The content-addressed object store: files by content hash, directory
 * manifests by manifest hash. Objects are read-only and enter only whole and
 * verified (temp file in the store, hash checked, rename), so a crash or a bad
 * download never leaves a wrong object under a right name.
 */
export class ObjectStore {
  private readonly tmpDir: string;

  constructor(readonly dir: string) {
    this.tmpDir = path.join(dir, 'tmp');
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
    if (this.has(hash)) return;
    const tmp = this.tempPath();
    try {
      if (link === 'hardlink') {
        try {
          fs.linkSync(src, tmp);
        } catch {
          fs.copyFileSync(src, tmp); // across filesystems a hard link is impossible
        }
      } else {
        fs.copyFileSync(src, tmp, link === 'reflink' ? fs.constants.COPYFILE_FICLONE : 0);
      }
      const got = await hashFile(tmp);
      if (got.hash !== hash) throw new UserError({ message: `'${label}' changed while it was being saved to the cache`, hint: 'run the stage again once nothing else writes to it' });
      this.commit(tmp, hash);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  async addManifest(entries: readonly ManifestEntry[]): Promise<string> {
    const hash = await manifestHash(entries);
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

  /** Read and verify a directory manifest. Undefined when absent; CorruptObject when bad. */
  async readManifest(hash: string): Promise<ManifestEntry[] | undefined> {
    let text: string;
    try {
      text = fs.readFileSync(this.pathOf(hash), 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw e;
    }
    const r = await parseManifest(text, hash);
    if (!r.ok) throw new CorruptObject(hash, 'in the cache', r.problem);
    return r.entries;
  }

  /**
   * Admit a downloaded file as object `hash` only if its content matches.
   * Returns the problem when it does not (the temp file is removed either way).
   */
  async admit(tmp: string, hash: string): Promise<string | undefined> {
    try {
      if (isDirHash(hash)) {
        const r = await parseManifest(fs.readFileSync(tmp, 'utf8'), hash);
        if (!r.ok) return r.problem;
      } else {
        const got = await hashFile(tmp);
        if (got.hash !== hash) return `has content hash ${got.hash}, not ${hash} (corrupted or tampered with)`;
      }
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

  private commit(tmp: string, hash: string): void {
    const dest = this.pathOf(hash);
    this.ensureDir(path.dirname(dest));
    fs.chmodSync(tmp, 0o444);
    fs.renameSync(tmp, dest);
  }
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
