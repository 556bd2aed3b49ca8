import path from 'node:path';
import { UserError, didYouMean } from '../errors.js';
import { YamlSource } from '../config/yaml-source.js';
import { isPlainObject } from '../config/pipeline.js';

/** Where distributed work is queued: a Redis server that BullMQ drives. */
export interface SchedulerConfig {
  /** redis://[user:password@]host:port[/db] or rediss://… */
  readonly url: string;
  /** Prefix of every Redis key (BullMQ's `prefix`), so one Redis can serve several projects. */
  readonly prefix: string;
  /** The queue's name; workers take jobs from one queue. */
  readonly queue: string;
  /** How long a worker's claim on a job lasts without renewal: a killed worker's job is free again after it. */
  readonly lockDurationMs: number;
  /** How often workers look for jobs whose claim ran out (stalled jobs) and put them back. */
  readonly stalledIntervalMs: number;
}

const KEYS = ['url', 'prefix', 'queue', 'lock_duration_ms', 'stalled_interval_ms'];
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/**
 * The `scheduler:` section of .lockstep/config, overlaid key by key by
 * .lockstep/config.local (where a URL with a password belongs), then
 * LOCKSTEP_SCHEDULER_URL and LOCKSTEP_SCHEDULER_QUEUE. Undefined when no URL is configured anywhere.
 */
export function readSchedulerConfig(stateDir: string, env: NodeJS.ProcessEnv = process.env): SchedulerConfig | undefined {
  const merged: Record<string, unknown> = {};
  const where: Record<string, () => ReturnType<YamlSource['locate']>> = {};
  for (const name of ['config', 'config.local']) {
    const src = YamlSource.read(path.join(stateDir, name), path.join('.lockstep', name));
    const doc = src?.toJS();
    if (!src || !isPlainObject(doc) || doc.scheduler === undefined) continue;
    const s = doc.scheduler;
    if (!isPlainObject(s))
      throw new UserError({
        message: '`scheduler` must be a mapping with at least a url',
        location: src.locate(['scheduler']),
      });
    for (const [k, v] of Object.entries(s)) {
      if (!KEYS.includes(k)) {
        const near = didYouMean(k, KEYS);
        throw new UserError({
          message: `unknown field 'scheduler.${k}'${near ? `; ${near}` : ''}`,
          location: src.locate(['scheduler', k], true),
        });
      }
      merged[k] = v;
      where[k] = () => src.locate(['scheduler', k]);
    }
  }
  if (env.LOCKSTEP_SCHEDULER_URL) {
    merged.url = env.LOCKSTEP_SCHEDULER_URL;
    where.url = () => ({ file: 'LOCKSTEP_SCHEDULER_URL' });
  }
  // A queue per CI run or per person, without editing the committed config.
  if (env.LOCKSTEP_SCHEDULER_QUEUE) {
    merged.queue = env.LOCKSTEP_SCHEDULER_QUEUE;
    where.queue = () => ({ file: 'LOCKSTEP_SCHEDULER_QUEUE' });
  }
  if (merged.url === undefined) return undefined;
  const url = merged.url;
  if (typeof url !== 'string' || !/^rediss?:\/\/[^/]/.test(url)) {
    throw new UserError({
      message: `scheduler.url must be a redis:// or rediss:// URL, got '${String(url)}'`,
      location: where.url!(),
    });
  }
  const str = (k: string, dflt: string): string => {
    const v = merged[k];
    if (v === undefined) return dflt;
    if (typeof v !== 'string' || !NAME.test(v))
      throw new UserError({
        message: `scheduler.${k} must be a name of letters, digits, '.', '_' and '-'`,
        location: where[k]!(),
      });
    return v;
  };
  const ms = (k: string, dflt: number): number => {
    const v = merged[k];
    if (v === undefined) return dflt;
    if (!Number.isInteger(v) || (v as number) < 100)
      throw new UserError({
        message: `scheduler.${k} must be a whole number of milliseconds, at least 100`,
        location: where[k]!(),
      });
    return v as number;
  };
  return {
    url,
    prefix: str('prefix', 'lockstep'),
    queue: str('queue', 'experiments'),
    lockDurationMs: ms('lock_duration_ms', 30_000),
    stalledIntervalMs: ms('stalled_interval_ms', 30_000),
  };
}

/** The configuration, or a clear error saying how to add it. */
export function requireSchedulerConfig(stateDir: string, env: NodeJS.ProcessEnv = process.env): SchedulerConfig {
  const cfg = readSchedulerConfig(stateDir, env);
  if (!cfg) {
    throw new UserError({
      message: 'no scheduler is configured',
      hint: "add 'scheduler: {url: redis://HOST:6379}' to .lockstep/config (or .lockstep/config.local), or set LOCKSTEP_SCHEDULER_URL",
    });
  }
  return cfg;
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
