import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { readJson, writeJsonAtomic } from '../atomic-write.js';
import type { ClassificationMetrics } from '../models/metrics.js';

/**
 * A file-based run store (like MLflow's mlruns/): one directory per run with
 * a run.json written atomically, so a listing never sees half a record.
 *
 * `train` does not write here: its run records are part of its cached outputs
 * (data/runs/), so a run restored from the cache or run in an experiment's
 * temporary copy has its record too. The store is filled from those outputs
 * (see workspace-sync.ts); a record's id makes filling it idempotent.
 */
export const RUNS_DIR = 'mlruns';

/** A file the run produced: its workspace path and the content hash the Lockstep cache keeps it under. */
export interface Artifact {
  readonly path: string;
  readonly hash: string;
}

export interface RunRecord {
  readonly id: string;
  readonly stage: string;
  readonly model: string;
  readonly family: string;
  readonly started_at: string;
  readonly finished_at: string;
  readonly duration_ms: number;
  readonly git: { readonly commit: string; readonly dirty: boolean } | null;
  /** md5 of the training and test feature files, in that order: the data the model saw. */
  readonly data_checksum: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly metrics: { readonly train: ClassificationMetrics; readonly test: ClassificationMetrics; readonly cv_score: number };
  /** What the run produced; fetch an artifact from the cache by its hash after the workspace moved on. */
  readonly artifacts: Readonly<Record<string, Artifact>>;
}

/** Sortable by time, unique across concurrent processes. */
export function newRunId(startedAt: Date): string {
  const stamp = startedAt.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${crypto.randomBytes(4).toString('hex')}`;
}

export class RunStore {
  readonly dir: string;

  constructor(root: string) {
    this.dir = path.join(root, RUNS_DIR);
  }

  /** Add a record unless the store has it already; true when it was added. */
  add(rec: RunRecord): boolean {
    const file = path.join(this.dir, rec.id, 'run.json');
    if (fs.existsSync(file)) return false;
    writeJsonAtomic(file, rec);
    return true;
  }

  /** Oldest first. Directories without a complete run.json (none, by construction) are skipped. */
  list(): RunRecord[] {
    if (!fs.existsSync(this.dir)) return [];
    return fs
      .readdirSync(this.dir)
      .sort()
      .flatMap((id) => {
        const f = path.join(this.dir, id, 'run.json');
        return fs.existsSync(f) ? [readJson<RunRecord>(f)] : [];
      });
  }

  /** An exact id, or a unique prefix of one. */
  get(idOrPrefix: string): RunRecord {
    const matches = this.list().filter((r) => r.id === idOrPrefix || r.id.startsWith(idOrPrefix));
    const exact = matches.find((r) => r.id === idOrPrefix);
    if (exact) return exact;
    if (matches.length === 1) return matches[0]!;
    if (matches.length === 0) throw new Error(`no run '${idOrPrefix}' (see: leads runs list)`);
    throw new Error(`run id '${idOrPrefix}' is ambiguous: ${matches.map((r) => r.id).join(', ')}`);
  }
}
