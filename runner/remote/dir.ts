import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { errnoCode } from '../fs-util.js';
import { pidExists } from '../owner.js';

/**
 * A temp upload untouched this long is abandoned even when its owner cannot be
 * checked (another machine writing to a shared folder): one still being
 * written has a fresh mtime.
 */
export const ABANDONED_UPLOAD_MS = 60 * 60 * 1000;

/** This machine, as written into temp names so a later push can check the owner's pid. */
const HOST = os.hostname().replace(/[^A-Za-z0-9.]/g, '_') || 'host';

/**
 * Whether a `.tmp-…` upload (`.tmp-<host>-<pid>-<random>`, or the older
 * `.tmp-<pid>-<random>`) was left by a push that died: its owner on this
 * machine is gone, or nobody has written to it for ABANDONED_UPLOAD_MS.
 */
export function isAbandonedUpload(name: string, mtimeMs: number, now = Date.now()): boolean {
  const m = /^\.tmp-(?:(.+)-)?(\d+)-[a-z0-9]+$/.exec(name);
  if (!m) return false;
  const pid = Number(m[2]);
  if (m[1] === HOST && pid !== process.pid && !pidExists(pid)) return true;
  return now - mtimeMs > ABANDONED_UPLOAD_MS;
}
import type { RemoteStore } from './types.js';

/** A remote that is a folder: local disk, a mounted network share, a USB drive. */
export class DirRemote implements RemoteStore {
  /** Folders this process has swept of abandoned uploads (once each is enough). */
  private readonly swept = new Set<string>();

  constructor(
    readonly name: string,
    private readonly root: string,
  ) {}

  get description(): string {
    return this.root;
  }

  private abs(key: string): string {
    return path.join(this.root, ...key.split('/'));
  }

  async existing(keys: readonly string[]): Promise<Map<string, number | undefined>> {
    const found = new Map<string, number | undefined>();
    for (const k of keys) {
      try {
        found.set(k, fs.statSync(this.abs(k)).size);
      } catch {
        // absent
      }
    }
    return found;
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    const walk = (dir: string, rel: string) => {
      let ents: fs.Dirent[];
      try {
        ents = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of ents) {
        if (e.name.startsWith('.tmp-')) continue;
        const k = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) walk(path.join(dir, e.name), k);
        else out.push(k);
      }
    };
    const base = prefix.replace(/\/$/, '');
    walk(this.abs(base), base);
    return out;
  }

  async download(key: string, destFile: string, progress?: (bytes: number) => void, signal?: AbortSignal): Promise<void> {
    if (!progress && !signal) {
      // copy_file_range in the kernel: several times faster than a stream for small files.
      try {
        await fs.promises.copyFile(this.abs(key), destFile);
        return;
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') throw new Error(`'${key}' is not on remote '${this.name}'`);
        throw e;
      }
    }
    const src = fs.createReadStream(this.abs(key));
    if (progress) src.on('data', (c) => progress((c as Buffer).length));
    try {
      await pipeline(src, fs.createWriteStream(destFile), { signal });
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new Error(`'${key}' is not on remote '${this.name}'`);
      throw e;
    }
  }

  /** Written under a temp name beside the target, then renamed: a reader sees all or nothing. */
  async upload(key: string, srcFile: string, progress?: (bytes: number) => void, signal?: AbortSignal): Promise<void> {
    const dest = this.abs(key);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    this.sweep(path.dirname(dest));
    const tmp = path.join(path.dirname(dest), `.tmp-${HOST}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
    try {
      if (!progress && !signal) await fs.promises.copyFile(srcFile, tmp);
      else {
        const src = fs.createReadStream(srcFile);
        if (progress) src.on('data', (c) => progress((c as Buffer).length));
        await pipeline(src, fs.createWriteStream(tmp), { signal });
      }
      fs.renameSync(tmp, dest);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  }

  /** Remove abandoned temp uploads (a push killed mid-upload) from a folder this push writes into. */
  private sweep(dir: string): void {
    if (this.swept.has(dir)) return;
    this.swept.add(dir);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      if (!n.startsWith('.tmp-')) continue;
      const file = path.join(dir, n);
      try {
        if (isAbandonedUpload(n, fs.lstatSync(file).mtimeMs)) fs.rmSync(file, { force: true });
      } catch {
        // gone already (another push swept it, or its owner renamed it)
      }
    }
  }

  async remove(keys: readonly string[]): Promise<void> {
    for (const k of keys) fs.rmSync(this.abs(k), { force: true });
  }

  async close(): Promise<void> {}
}
