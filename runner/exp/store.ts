import fs from 'node:fs';
import path from 'node:path';
import { UserError, didYouMean } from '../errors.js';
import { writeFileAtomic } from '../fs-util.js';
import { sameSig, settled, sigOf, type Sig } from '../hash/signature.js';
import type { LockEntry } from '../lockfile.js';
import type { Assignment } from './overrides.js';
import { Claims, type Lease } from './claim.js';
import type { ExpJobData } from '../queue/job.js';

type ExpStatus = 'queued' | 'running' | 'success' | 'failed';

/** Everything needed to compare an experiment and to bring it back. */
export interface ExpRecord {
  readonly name: string;
  readonly status: ExpStatus;
  readonly createdAt: string;
  readonly finishedAt?: string;
  readonly durationMs?: number;
  /** git commit the experiment started from, if the repository is in git. */
  readonly baseRev?: string;
  readonly overrides: Assignment;
  /** `exp run TARGET…`: only these targets (and what they depend on) were reproduced. */
  readonly targets?: readonly string[];
  /** Params files as the experiment ran them: raw text (to restore) and flattened values (to compare). */
  readonly paramsText?: Readonly<Record<string, string>>;
  readonly params?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly metrics?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly lock?: Readonly<Record<string, LockEntry>>;
  /** Metrics files' raw text, so they can be written back by `exp apply` even when not cached. */
  readonly metricsText?: Readonly<Record<string, string>>;
  readonly error?: string;
  /** While running: who runs it and where (see claim.ts). */
  readonly lease?: Lease;
  /** Run on a worker machine through the shared queue (`exp run --distributed`). */
  readonly distributed?: DistributedInfo;
}

interface DistributedInfo {
  readonly jobId: string;
  readonly queue: string;
  /** The job as queued, so it can be queued again if Redis lost it. */
  readonly job: ExpJobData;
  /** The worker running it, or the one that ran it. */
  readonly worker?: string;
  /** Content hash of the run's log, an object on the remote (`lockstep queue logs NAME`). */
  readonly log?: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/**
 * Parsed records by file, with the stat signature they were parsed at. `lockstep ui` lists every record on each
 * page load and `exp run --run-all` on each claim; records are rewritten by rename, so a change always moves the
 * signature. The rule for "unchanged" is the engine's one (hash/signature.ts).
 */
const parsed = new Map<string, { readonly sig: Sig; readonly rec: ExpRecord }>();

function parsedRecord(file: string): ExpRecord {
  const readStart = Date.now();
  const sig = sigOf(fs.statSync(file));
  const known = parsed.get(file);
  if (known && sameSig(known.sig, 0, sig)) return known.rec;
  const rec = JSON.parse(fs.readFileSync(file, 'utf8')) as ExpRecord;
  if (settled(sig, readStart)) parsed.set(file, { sig, rec });
  else parsed.delete(file);
  return rec;
}

/** One JSON file per experiment under .lockstep/exps/, each written atomically. */
export class ExpStore {
  readonly dir: string;
  readonly claims: Claims;
  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'exps');
    this.claims = new Claims(path.join(this.dir, 'claims'));
  }

  private file(name: string): string {
    return path.join(this.dir, `${name}.json`);
  }

  static checkName(name: string): void {
    if (!NAME.test(name)) throw new UserError({ message: `invalid experiment name '${name}': use letters, digits, '.', '_' and '-'` });
  }

  exists(name: string): boolean {
    return fs.existsSync(this.file(name));
  }

  save(rec: ExpRecord): void {
    writeFileAtomic(this.file(rec.name), JSON.stringify(rec, null, 1));
  }

  /** Every record, oldest first. A record whose file has not changed since it was last parsed is not parsed again. */
  list(): ExpRecord[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir).filter((f) => f.endsWith('.json'));
    } catch {
      return [];
    }
    const out: ExpRecord[] = [];
    for (const f of names) {
      try {
        out.push(parsedRecord(path.join(this.dir, f)));
      } catch {
        // a foreign or damaged file: skip it rather than hide every other experiment
      }
    }
    return out.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.name < b.name ? -1 : 1));
  }

  /** The record as it is on disk now, or undefined when it was removed. */
  read(name: string): ExpRecord | undefined {
    try {
      return JSON.parse(fs.readFileSync(this.file(name), 'utf8')) as ExpRecord;
    } catch {
      return undefined;
    }
  }

  get(name: string): ExpRecord {
    try {
      return JSON.parse(fs.readFileSync(this.file(name), 'utf8')) as ExpRecord;
    } catch {
      const names = this.list().map((r) => r.name);
      throw new UserError({
        message: `no experiment named '${name}'`,
        hint: didYouMean(name, names) ?? (names.length ? `run 'lockstep exp show' to list them` : 'no experiments recorded yet'),
      });
    }
  }

  remove(name: string): void {
    this.get(name);
    fs.rmSync(this.file(name), { force: true });
    fs.rmSync(path.join(this.dir, 'logs', `${name}.log`), { force: true });
    this.claims.forget(name);
    try {
      fs.rmdirSync(this.claims.dir); // only when empty
    } catch {
      // still holds someone's claim, or never existed
    }
  }

  logFile(name: string): string {
    return path.join(this.dir, 'logs', `${name}.log`);
  }

  /** A fresh name: exp-1, exp-2, … */
  newName(taken: Set<string> = new Set(this.list().map((r) => r.name))): string {
    for (let i = taken.size + 1; ; i++) {
      const n = `exp-${i}`;
      if (!taken.has(n)) return n;
    }
  }
}
