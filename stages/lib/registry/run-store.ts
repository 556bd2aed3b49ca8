import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../../runner/api.js';
import { readJson, toStableJson } from '../stage-files.js';
import type { RunRecord } from './run-record.js';

/**
 * A file-based run store (like MLflow's mlruns/): one directory per run with
 * a run.json written atomically, so a listing never sees half a record.
 *
 * `train` does not write here: its run records are part of its cached outputs
 * (data/runs/), so a run restored from the cache or run in an experiment's
 * temporary copy has its record too. The store is filled from those outputs
 * (see workspace-sync.ts; a record is made by run-record.ts); a record's id makes filling it idempotent.
 */
const RUNS_DIR = 'mlruns';

export class RunStore {
  readonly dir: string;

  constructor(root: string) {
    this.dir = path.join(root, RUNS_DIR);
  }

  /** Add a record unless the store has it already; true when it was added. */
  add(rec: RunRecord): boolean {
    const file = path.join(this.dir, rec.id, 'run.json');
    if (fs.existsSync(file)) return false;
    writeFileAtomic(file, toStableJson(rec));
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
