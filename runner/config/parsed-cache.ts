import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../fs-util.js';
import { sameSig, settled, sigOf, type Sig } from '../hash/signature.js';

/**
 * Parsed YAML files (pipeline.yaml, params files, pipeline.lock) remembered by
 * their stat signature. YAML parsing is most of a no-op run on a large
 * pipeline; JSON.parse of the same data is ~50× cheaper. Positions for error
 * messages are recomputed from the file only when an error needs them.
 */
interface Entry {
  readonly sig: Sig;
  readonly value: unknown;
}

const VERSION = 1;

export class ParsedFileCache {
  private dirty = false;
  /** Before any file of this run was read: the reference for `settled`. */
  private readonly openedAt = Date.now();
  private constructor(
    private readonly file: string | undefined,
    private readonly entries: Map<string, Entry>,
  ) {}

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
    if (!e || !sameSig(e.sig, 0, sigOf(st))) return undefined;
    return { value: e.value };
  }

  put(abs: string, st: fs.Stats, value: unknown): void {
    if (!this.file) return;
    // A file rewritten within one timestamp tick could keep its signature: a fresh one is parsed again next time.
    const sig = sigOf(st);
    if (!settled(sig, this.openedAt)) return;
    if (!jsonSafe(value)) return;
    this.entries.set(abs, { sig, value });
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

/** Values JSON would not return unchanged (NaN, ±Infinity) are not cached. */
function jsonSafe(v: unknown): boolean {
  if (typeof v === 'number') return Number.isFinite(v);
  if (v === null || typeof v !== 'object') return typeof v !== 'undefined' && typeof v !== 'bigint';
  if (Array.isArray(v)) return v.every(jsonSafe);
  return Object.values(v).every(jsonSafe);
}
