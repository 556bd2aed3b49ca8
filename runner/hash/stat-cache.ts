import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../fs-util.js';

/**
 * Remembers (size, mtime, inode) → content hash so unchanged files are not
 * re-read. Lives in .lockstep/stat-cache.json; losing it only costs time.
 */
type Entry = readonly [size: number, mtimeMs: number, ino: number, hash: string];

/** mtimeMs keeps sub-microsecond precision as a double on nanosecond filesystems: enough to see a rewrite. */
export interface FileStat {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
}

const VERSION = 2;
/**
 * A file modified in the same clock tick as it was hashed could change again
 * without its mtime moving (git's "racily clean" problem). On filesystems with
 * whole-second timestamps we only trust entries older than this.
 */
const COARSE_RACE_WINDOW_MS = 2000;

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
    if (e[0] !== st.size || e[1] !== st.mtimeMs || e[2] !== st.ino) return undefined;
    return e[3];
  }

  remember(absPath: string, st: FileStat, hash: string): void {
    const coarse = st.mtimeMs % 1000 === 0;
    if (coarse && Date.now() - st.mtimeMs < COARSE_RACE_WINDOW_MS) return;
    const prev = this.entries.get(absPath);
    if (prev && prev[3] === hash && prev[0] === st.size && prev[2] === st.ino && prev[1] === st.mtimeMs) return;
    this.entries.set(absPath, [st.size, st.mtimeMs, st.ino, hash]);
    this.dirty = true;
  }

  save(): void {
    if (!this.dirty || !this.file) return;
    const obj: Record<string, Entry> = Object.fromEntries(this.entries);
    writeFileAtomic(this.file, JSON.stringify({ version: VERSION, entries: obj }), { durable: false });
    this.dirty = false;
  }
}
