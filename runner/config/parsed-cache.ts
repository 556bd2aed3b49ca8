import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../fs-util.js';

/**
 * Parsed YAML files (pipeline.yaml, params files, pipeline.lock) remembered by
 * their stat signature. YAML parsing is most of a no-op run on a large
 * pipeline; JSON.parse of the same data is ~50× cheaper. Positions for error
 * messages are recomputed from the file only when an error needs them.
 */
type Sig = readonly [size: number, mtimeMs: number, ctimeMs: number, ino: number];

interface Entry {
  readonly sig: Sig;
  readonly value: unknown;
}

const VERSION = 1;

export class ParsedFileCache {
  private dirty = false;
  private constructor(private readonly file: string | undefined, private readonly entries: Map<string, Entry>) {}

  static load(stateDir: string): ParsedFileCache {
    const file = path.join(stateDir, 'parsed-cache.json');
    let entries = new Map<string, Entry>();
    try {
      const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { version: number; entries: Record<string, Entry> };
      if (doc.version === VERSION) entries = new Map(Object.entries(doc.entries));
    } catch {
      // absent or unreadable: parse everything
    }
    return new ParsedFileCache(file, entries);
  }

  static disabled(): ParsedFileCache {
    return new ParsedFileCache(undefined, new Map());
  }

  get(abs: string, st: fs.Stats): { value: unknown } | undefined {
    const e = this.entries.get(abs);
    if (!e || !sameSig(e.sig, sigOf(st))) return undefined;
    return { value: e.value };
  }

  put(abs: string, st: fs.Stats, value: unknown): void {
    if (!this.file) return;
    // A file rewritten within one coarse timestamp tick could keep its signature: don't trust fresh whole-second mtimes.
    if (st.mtimeMs % 1000 === 0 && Date.now() - st.mtimeMs < 2000) return;
    if (!jsonSafe(value)) return;
    this.entries.set(abs, { sig: sigOf(st), value });
    this.dirty = true;
  }

  save(): void {
    if (!this.dirty || !this.file) return;
    try {
      writeFileAtomic(this.file, JSON.stringify({ version: VERSION, entries: Object.fromEntries(this.entries) }), { durable: false });
      this.dirty = false;
    } catch {
      // only a cache
    }
  }
}

function sigOf(st: fs.Stats): Sig {
  return [st.size, st.mtimeMs, st.ctimeMs, st.ino];
}

function sameSig(a: Sig, b: Sig): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
}

/** Values JSON would not return unchanged (NaN, ±Infinity) are not cached. */
function jsonSafe(v: unknown): boolean {
  if (typeof v === 'number') return Number.isFinite(v);
  if (v === null || typeof v !== 'object') return typeof v !== 'undefined' && typeof v !== 'bigint';
  if (Array.isArray(v)) return v.every(jsonSafe);
  return Object.values(v).every(jsonSafe);
}
