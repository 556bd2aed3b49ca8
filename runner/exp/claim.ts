import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { currentOwner, ownerDead, type Owner } from '../owner.js';
import { errnoCode } from '../fs-util.js';

/**
 * Who runs an experiment: the runner process, the temporary copy it runs in
 * and, once started, the `repro` child doing the work there.
 */
export interface Lease extends Owner {
  /** Tells this lease apart from any other on the same claim file name. */
  readonly token: string;
  readonly since: string;
  readonly gen: number;
  /** The temporary copy of the repository, removed when the run ends or its runner dies. */
  readonly dir: string;
  readonly child?: Owner;
}

/** A lease from another host cannot be checked by pid: it expires unless its runner touches it this often. */
export const HEARTBEAT_MS = 60_000;
export const FOREIGN_LEASE_TTL_MS = 10 * 60_000;

/**
 * Exclusive claims on queued experiments, so two `--run-all` never run one
 * twice. A claim is the file `NAME@GEN.lease`, made complete (temp file, then
 * link(2), which fails when the name exists) so readers never see half a
 * lease. A claim whose owner died is never deleted to be retaken — two
 * processes doing that at once could each delete the other's fresh claim —
 * but passed over: the next claimant creates generation GEN+1, and exactly one
 * of several racing claimants can. The holder removes the dead generations
 * below its own when it releases.
 */
export class Claims {
  constructor(readonly dir: string) {}

  private file(name: string, gen: number): string {
    return path.join(this.dir, `${name}@${gen}.lease`);
  }

  /** Claim `name` for this process; undefined when a live runner holds it. */
  tryClaim(name: string, dir: string): Lease | undefined {
    fs.mkdirSync(this.dir, { recursive: true });
    const owner = currentOwner();
    const token = crypto.randomBytes(8).toString('hex');
    const tmp = path.join(this.dir, `.tmp-${process.pid}-${token}`);
    try {
      for (let gen = 0; gen < 10_000;) {
        const lease: Lease = { ...owner, token, since: new Date().toISOString(), gen, dir };
        fs.writeFileSync(tmp, JSON.stringify(lease));
        try {
          fs.linkSync(tmp, this.file(name, gen));
          return lease;
        } catch (e) {
          if (errnoCode(e) !== 'EEXIST') throw e;
        }
        const held = this.read(name, gen);
        if (held === 'gone') continue; // released between our link and our read: try this generation again
        if (held.alive) return undefined;
        gen++;
      }
      throw new Error(`too many dead claims on experiment '${name}' in ${this.dir}`);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  /** Whether the lease recorded in an experiment is still held by a live runner. */
  held(name: string, lease: Lease): boolean {
    const cur = this.read(name, lease.gen);
    return cur !== 'gone' && cur.alive && cur.lease?.token === lease.token;
  }

  /** Tell other hosts this lease is still in use. */
  heartbeat(name: string, lease: Lease): void {
    const now = new Date();
    try {
      fs.utimesSync(this.file(name, lease.gen), now, now);
    } catch {
      // released meanwhile
    }
  }

  /** Give the claim up, with the dead generations it passed over. */
  release(name: string, lease: Lease): void {
    for (let g = 0; g < lease.gen; g++) {
      const cur = this.read(name, g);
      if (cur !== 'gone' && !cur.alive) fs.rmSync(this.file(name, g), { force: true });
    }
    const own = this.read(name, lease.gen);
    if (own !== 'gone' && own.lease?.token === lease.token) fs.rmSync(this.file(name, lease.gen), { force: true });
  }

  /** Claim files of an experiment that is being forgotten, when nobody alive holds them. */
  forget(name: string): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return;
    }
    for (const f of names) {
      const m = /^(.*)@(\d+)\.lease$/.exec(f);
      if (!m || m[1] !== name) continue;
      const cur = this.read(name, Number(m[2]));
      if (cur !== 'gone' && !cur.alive) fs.rmSync(path.join(this.dir, f), { force: true });
    }
  }

  private read(name: string, gen: number): 'gone' | { alive: boolean; lease?: Lease } {
    const file = this.file(name, gen);
    let text: string;
    let mtimeMs: number;
    try {
      text = fs.readFileSync(file, 'utf8');
      mtimeMs = fs.statSync(file).mtimeMs;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return 'gone';
      throw e;
    }
    let lease: Lease;
    try {
      lease = JSON.parse(text) as Lease;
    } catch {
      return { alive: false }; // not ours to read: nobody can be holding it
    }
    return { alive: leaseAlive(lease, mtimeMs), lease };
  }
}

/** Alive: on this host, its process still runs; elsewhere, it was touched recently enough. */
export function leaseAlive(lease: Lease, touchedMs: number, now: number = Date.now()): boolean {
  if (typeof lease?.pid !== 'number' || typeof lease.host !== 'string') return false;
  if (lease.host !== os.hostname()) return now - touchedMs < FOREIGN_LEASE_TTL_MS;
  return !ownerDead(lease);
}
