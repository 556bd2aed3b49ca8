import type { Job, Queue } from 'bullmq';
import type { ExpRecord, ExpStore } from '../exp/store.js';
import type { ExpJobData, ExpJobProgress, ExpJobResult } from './job.js';

export function jobOptions(jobId: string) {
  return {
    jobId,
    // Transient trouble (a remote that did not answer) is tried again; a stage that fails is not (the worker says so).
    attempts: 3,
    backoff: { type: 'exponential', delay: 2000 },
    // Kept: a finished job's id is what makes queueing the same experiment again a no-op, and its result what the submitter collects.
    removeOnComplete: false,
    removeOnFail: false,
  } as const;
}

function progressOf(job: Job): Partial<ExpJobProgress> {
  const p = job.progress as unknown;
  return p && typeof p === 'object' ? (p as ExpJobProgress) : {};
}

/** The record as the job's state says it should now be. */
export function recordFromJob(rec: ExpRecord, job: Job, state: string): ExpRecord {
  const d = rec.distributed!;
  const progress = progressOf(job);
  const worker = job.processedBy ?? progress.worker ?? d.worker;
  if (state === 'completed') {
    const r = job.returnvalue as ExpJobResult;
    const { error: _e, ...rest } = rec;
    return {
      ...rest,
      paramsText: r.paramsText,
      params: r.params,
      metrics: r.metrics,
      metricsText: r.metricsText,
      lock: r.lock,
      status: 'success',
      finishedAt: new Date(job.finishedOn ?? Date.now()).toISOString(),
      durationMs: r.durationMs,
      distributed: { ...d, worker: r.worker, ...(r.log ? { log: r.log } : {}) },
    };
  }
  if (state === 'failed') {
    return {
      ...rec,
      status: 'failed',
      error: job.failedReason,
      finishedAt: new Date(job.finishedOn ?? Date.now()).toISOString(),
      distributed: {
        ...d,
        ...(worker ? { worker } : {}),
        ...(progress.log ? { log: progress.log } : {}),
      },
    };
  }
  const { error: _e, finishedAt: _f, ...rest } = rec;
  if (state === 'active')
    return {
      ...rest,
      status: 'running',
      distributed: { ...d, ...(worker ? { worker } : {}) },
    };
  return { ...rest, status: 'queued', distributed: { ...d } };
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Bring the local records of distributed experiments up to date with the
 * queue: results of finished jobs become the experiment's record (one file
 * per experiment, so doing this twice, or from two commands at once, still
 * leaves exactly one record). A job Redis no longer has (a Redis restarted
 * without persistence) is queued again from the record when `requeue` is set:
 * the record holds the whole job, and the stages it had finished are
 * restored from the remote's run-cache, not run again.
 */
export async function syncRecords(store: ExpStore, queue: Queue, opts: { requeue: boolean }): Promise<{ changed: ExpRecord[]; requeued: string[] }> {
  const changed: ExpRecord[] = [];
  const requeued: string[] = [];
  for (const rec of store.list()) {
    const d = rec.distributed;
    if (!d || d.queue !== queue.name || rec.status === 'success') continue;
    let job = (await queue.getJob(d.jobId)) as Job<ExpJobData> | undefined;
    if (!job) {
      if (!opts.requeue || rec.status === 'failed') continue;
      job = (await queue.add(rec.name, d.job, jobOptions(d.jobId))) as Job<ExpJobData>;
      requeued.push(rec.name);
    }
    const state = await job.getState();
    // Read the job again once it is finished: fetched while it ran, it lacks the result its state now promises.
    if (state === 'completed' || state === 'failed') job = ((await queue.getJob(d.jobId)) as Job<ExpJobData> | undefined) ?? job;
    if (state === 'completed' && !job.returnvalue) continue; // its result not readable yet: next time
    const next = recordFromJob(rec, job, state);
    if (!sameJson(next, rec)) {
      store.save(next);
      changed.push(next);
    }
  }
  return { changed, requeued };
}
