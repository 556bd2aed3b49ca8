import os from 'node:os';
import type { Queue, ConnectionOptions } from 'bullmq';
import { UserError } from '../errors.js';
import { redactUrl, type SchedulerConfig } from './config.js';

/** Redis did not answer: nothing was queued or changed. Exit 1, as for an unreachable remote. */
class SchedulerUnavailable extends UserError {
  constructor(cfg: SchedulerConfig, why: string) {
    super(
      {
        message: `scheduler ${redactUrl(cfg.url)} cannot be reached: ${why}; nothing was changed`,
      },
      1,
    );
  }
}

function reason(e: unknown): string {
  const err = e as {
    code?: string;
    message?: string;
    errors?: { code?: string }[];
  };
  return err.code ?? err.errors?.[0]?.code ?? err.message ?? String(e);
}

/**
 * Ask Redis once, quickly, before BullMQ starts: BullMQ itself waits for a
 * reconnection forever (right for a worker already running, wrong for a
 * command the user just typed).
 */
export async function checkReachable(cfg: SchedulerConfig, timeoutMs = 3000): Promise<void> {
  const { Redis } = await import('ioredis');
  const r = new Redis(cfg.url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    enableOfflineQueue: false,
  });
  let cause: unknown;
  r.on('error', (e) => void (cause ??= e)); // the first error says why (connect() itself only says the connection closed)
  try {
    await r.connect();
    await r.ping();
    await r.quit();
  } catch (e) {
    // disconnect() on a connection that never opened leaves a 2 s timer holding the process: only when still open.
    if (r.status !== 'end') r.disconnect();
    throw new SchedulerUnavailable(cfg, reason(cause ?? e));
  }
}

/**
 * BullMQ's connection: commands wait for Redis to come back instead of
 * failing (maxRetriesPerRequest: null, as BullMQ requires for workers), with
 * reconnection attempts at most a second apart.
 */
export function connectionOf(cfg: SchedulerConfig): ConnectionOptions {
  return {
    url: cfg.url,
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(100 * times, 1000),
  };
}

/** The configured queue (after checking Redis answers). */
export async function openQueue(cfg: SchedulerConfig, name = cfg.queue): Promise<Queue> {
  await checkReachable(cfg);
  const { Queue } = await import('bullmq');
  const q = new Queue(name, {
    connection: connectionOf(cfg),
    prefix: cfg.prefix,
  });
  q.on('error', () => undefined); // reconnections are ioredis's business; operations report their own failures
  return q;
}

/** A name for this process as a worker: host and pid, so `queue status` says where a job runs. */
export function workerName(): string {
  return `${os.hostname()}:${process.pid}`;
}

/** A plain Redis client for Lockstep's own small keys beside BullMQ's (cancellation requests). */
export async function plainClient(cfg: SchedulerConfig) {
  const { Redis } = await import('ioredis');
  const r = new Redis(cfg.url, {
    maxRetriesPerRequest: 1,
    retryStrategy: (times: number) => Math.min(100 * times, 1000),
  });
  r.on('error', () => undefined); // callers see failures through their commands
  return r;
}
