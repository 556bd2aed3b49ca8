import fs from 'node:fs';
import path from 'node:path';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { canonicalJson } from '../config/params.js';
import { writeFileAtomic, errnoCode } from '../fs-util.js';
import type { LockedPath } from '../lockfile.js';
import { isContentHash, runKey } from './layout.js';
import { listFanOut } from './object-store.js';

/**
 * The run-cache: stage fingerprint → the outputs that fingerprint produced.
 * Content hashes vouch for objects, but nothing vouches for this mapping: an
 * entry saying "these inputs gave that model" could be forged. So entries can
 * be signed (HMAC-SHA256 with a key from the environment), and when a key is
 * set, unsigned or badly signed entries are ignored.
 */
export interface RunEntry {
  readonly version: 1;
  readonly stage: string;
  readonly fingerprint: string;
  readonly outs: readonly LockedPath[];
  /** The stage's output, replayed when the entry is used. */
  readonly log: string;
  readonly created: string;
  readonly signature?: string;
}

export type RunLookup = { readonly kind: 'hit'; readonly entry: RunEntry } | { readonly kind: 'none' } | { readonly kind: 'ignored'; readonly why: string };

export interface RunCacheTrust {
  /** Signing key (LOCKSTEP_RUN_CACHE_KEY). When set, entries are signed and only valid signatures are trusted. */
  readonly key?: string;
  /** Never record entries (builds of untrusted code, such as pull requests). */
  readonly readOnly: boolean;
}

export function trustFromEnv(env: NodeJS.ProcessEnv = process.env): RunCacheTrust {
  const key = env.LOCKSTEP_RUN_CACHE_KEY || undefined;
  const ro = env.LOCKSTEP_RUN_CACHE_READ_ONLY;
  return { key, readOnly: ro !== undefined && ro !== '' && ro !== '0' && ro !== 'false' };
}

function signatureOf(entry: Omit<RunEntry, 'signature'>, key: string): string {
  const { signature: _drop, ...body } = entry as RunEntry;
  return 'hmac-sha256:' + createHmac('sha256', key).update(canonicalJson(body)).digest('hex');
}

/** Why an entry read from disk or a remote cannot be used, or undefined when it is well-formed and trusted. */
export function checkEntry(raw: unknown, fingerprint: string, trust: RunCacheTrust): string | undefined {
  const e = raw as Partial<RunEntry> | null;
  if (!e || e.version !== 1 || typeof e.stage !== 'string' || e.fingerprint !== fingerprint || !Array.isArray(e.outs) || typeof e.log !== 'string') {
    return 'it is malformed';
  }
  for (const o of e.outs) {
    if (!o || typeof o.path !== 'string' || typeof o.hash !== 'string' || !isContentHash(o.hash) || typeof o.size !== 'number') return 'it is malformed';
  }
  if (trust.key) {
    if (typeof e.signature !== 'string') return 'it is unsigned and LOCKSTEP_RUN_CACHE_KEY is set';
    const want = Buffer.from(signatureOf(e as RunEntry, trust.key));
    const got = Buffer.from(e.signature);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return 'its signature does not match LOCKSTEP_RUN_CACHE_KEY';
  }
  return undefined;
}

export class RunCache {
  constructor(
    readonly dir: string,
    readonly trust: RunCacheTrust,
  ) {}

  fileOf(fingerprint: string): string {
    return path.join(this.dir, runKey(fingerprint));
  }

  has(fingerprint: string): boolean {
    return fs.existsSync(this.fileOf(fingerprint));
  }

  lookup(fingerprint: string): RunLookup {
    let text: string;
    try {
      text = fs.readFileSync(this.fileOf(fingerprint), 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return { kind: 'none' };
      throw e;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return { kind: 'ignored', why: 'it is not valid JSON' };
    }
    const why = checkEntry(raw, fingerprint, this.trust);
    return why ? { kind: 'ignored', why } : { kind: 'hit', entry: raw as RunEntry };
  }

  /** Record an entry; a no-op in read-only mode. */
  record(stage: string, fingerprint: string, outs: readonly LockedPath[], log: string): void {
    if (this.trust.readOnly) return;
    const body: RunEntry = { version: 1, stage, fingerprint, outs: outs.map((o) => ({ ...o })), log, created: new Date().toISOString() };
    const entry = this.trust.key ? { ...body, signature: signatureOf(body, this.trust.key) } : body;
    // No fsync: an entry torn by a crash fails its check when read and is ignored, so it only costs a rerun.
    writeFileAtomic(this.fileOf(fingerprint), JSON.stringify(entry, null, 1) + '\n', { durable: false });
  }

  /** Every fingerprint with an entry (for gc and push). */
  list(): string[] {
    return listFanOut(path.join(this.dir, 'runs'), (_fan, name) => /^([0-9a-f]{16})\.json$/.exec(name)?.[1]);
  }

  remove(fingerprint: string): void {
    fs.rmSync(this.fileOf(fingerprint), { force: true });
  }
}
