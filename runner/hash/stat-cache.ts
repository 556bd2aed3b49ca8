import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../fs-util.js';

/**
 * Remembers (size, mtime, inode) → content hash so unchanged files are not
 * re-read. Lives in .lockstep/stat-cache.json; losing it only costs time.
 */
interface Entry {
  readonly size: number;
  readonly mtimeNs: string;
  readonly ino: number;
  readonly hash: string;
}

export interface FileStat {
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly ino: number;
}

const VERSION = 1;
/**
 * A file modified in the same clock tick as it was hashed could change again
 * without its mtime moving (git's "racily clean" problem). On filesystems with
 * whole-second timestamps we only trust entries older than this.
 */
const COARSE_RACE_WINDOW_NS = 2_000_000_000n;

export class StatCache {
  private entries: Map<string, Entry>;
  private dirty = false;

  private constructor(private readonly file: string, entries: Map<string, Entry>) {
    this.entries = entries;
  }

  static load(stateDir: string): StatCache {
    const file = path.join(stateDir, 'stat-cache.json');
    let entries = new Map<string, Entry>();
    try {
      const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { version: number; entries: Record<string, Entry> };
      if (parsed.version === VERSION) entries = new Map(Object.entries(parsed.entries));
    } catch {
      // Missing or unreadable: start empty, it is only a cache.
    }
    return new StatCache(file, entries);
  }

  static inMemory(): StatCache {
    return new StatCache('', new Map());
  }

  lookup(absPath: string, st: FileStat): string | undefined {
    const e = this.entries.get(absPath);
    if (!e) return undefined;
    if (e.size !== st.size || e.ino !== st.ino || e.mtimeNs !== st.mtimeNs.toString()) return undefined;
    return e.hash;
  }

  remember(absPath: string, st: FileStat, hash: string): void {
    const coarse = st.mtimeNs % 1_000_000_000n === 0n;
    if (coarse && BigInt(Date.now()) * 1_000_000n - st.mtimeNs < COARSE_RACE_WINDOW_NS) return;
    const prev = this.entries.get(absPath);
    if (prev && prev.hash === hash && prev.size === st.size && prev.ino === st.ino && prev.mtimeNs === st.mtimeNs.toString()) return;
    this.entries.set(absPath, { size: st.size, mtimeNs: st.mtimeNs.toString(), ino: st.ino, hash });
    this.dirty = true;
  }

  save(): void {
    if (!this.dirty || !this.file) return;
    const obj: Record<string, Entry> = Object.fromEntries(this.entries);
    writeFileAtomic(this.file, JSON.stringify({ version: VERSION, entries: obj }));
    this.dirty = false;
  }
}
