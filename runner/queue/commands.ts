import fs from 'node:fs';
import type { Job, Queue } from 'bullmq';
import { openWorkspace, type Workspace } from '../workspace.js';
import type { Io } from '../cli-io.js';
import { UserError, didYouMean } from '../errors.js';
import { openLocalCache } from '../cache/open.js';
import { fetchObjects, newReport } from '../cache/sync.js';
import { remoteFor } from '../remote/open.js';
import { describeAssignment } from '../exp/overrides.js';
import { ExpStore, type ExpRecord } from '../exp/store.js';
import { formatDuration } from '../reporter.js';
import { renderTable } from '../table.js';
import { requireSchedulerConfig, type SchedulerConfig } from './config.js';
import { openQueue, plainClient } from './connection.js';
import type { ExpJobData, ExpJobProgress, ExpJobResult, JobData } from './job.js';
import { jobOptions, recordFromJob, syncRecords } from './sync.js';

export interface QueueArgs {
  readonly sub: string | undefined;
  readonly names: readonly string[];
  readonly failed: boolean;
  readonly all: boolean;
  readonly json: boolean;
  readonly queue?: string;
}

const SUBS = ['status', 'logs', 'retry', 'cancel'];
const STATES = ['active', 'waiting', 'prioritized', 'delayed', 'failed', 'completed'] as const;

/** Redis key a worker watches to stop a running job (`queue cancel`). */
export function cancelKey(prefix: string, queue: string, jobId: string): string {
  return `${prefix}:${queue}:lockstep-cancel:${jobId}`;
}

/** `lockstep queue status | logs NAME | retry [NAME…|--failed] | cancel NAME…|--all` */
export async function queueCommand(io: Io, args: QueueArgs): Promise<number> {
  if (!args.sub || !SUBS.includes(args.sub)) {
    throw new UserError({
      message: args.sub ? `unknown queue command '${args.sub}'` : 'missing queue command',
      hint: didYouMean(args.sub ?? '', SUBS) ?? `use one of: ${SUBS.join(', ')}`,
    });
  }
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const cfg = requireSchedulerConfig(ws.stateDir);
  if (args.sub === 'logs' && args.names.length !== 1)
    throw new UserError({
      message: 'queue logs takes one experiment name (or job id)',
    });
  if (args.sub === 'retry' && !args.failed === !args.names.length)
    throw new UserError({
      message: 'queue retry takes experiment names, or --failed for every failed job',
    });
  if (args.sub === 'cancel' && !args.all === !args.names.length)
    throw new UserError({
      message: 'queue cancel takes experiment names, or --all',
    });
  const queue = await openQueue(cfg, args.queue ?? cfg.queue);
  try {
    const store = new ExpStore(ws.stateDir);
    await syncRecords(store, queue, { requeue: false });
    if (args.sub === 'status') return await status(io, queue, args.json);
    if (args.sub === 'logs') return await logs({ io, ws, store, queue }, args.names[0]!);
    if (args.sub === 'retry') return await retry(io, store, queue, args);
    return await cancel({ io, store, queue, cfg }, args);
  } finally {
    await queue.close();
  }
}

interface Row {
  readonly job: Job<ExpJobData>;
  readonly state: string;
}

async function allJobs(queue: Queue): Promise<Row[]> {
  const jobs = (await queue.getJobs([...STATES], 0, -1, true)) as Job<ExpJobData>[];
  const rows: Row[] = [];
  for (const job of jobs) if (job) rows.push({ job, state: await job.getState() });
  return rows;
}

function workerOf(job: Job): string | undefined {
  return job.processedBy ?? (job.progress as Partial<ExpJobProgress> | undefined)?.worker;
}

function shown(r: Row): string {
  if (r.state === 'active') return `running on ${workerOf(r.job) ?? 'a worker'}`;
  if (r.state === 'completed') return 'done';
  if (r.state === 'failed') return 'failed';
  return 'queued';
}

async function status(io: Io, queue: Queue, json: boolean): Promise<number> {
  const rows = await allJobs(queue);
  if (json) {
    io.out(
      JSON.stringify(
        {
          queue: queue.name,
          jobs: rows.map(({ job, state }) => ({
            id: job.id,
            name: job.data?.name ?? job.name,
            state: shown({ job, state }).split(' ')[0],
            worker: workerOf(job),
            overrides: job.data?.overrides,
            commit: job.data?.commit,
            ...(state === 'failed' ? { error: job.failedReason } : {}),
            ...(state === 'completed'
              ? {
                  metrics: (job.returnvalue as ExpJobResult | undefined)?.metrics,
                }
              : {}),
          })),
        },
        null,
        2,
      ),
    );
    return 0;
  }
  if (rows.length === 0) {
    io.out(`queue '${queue.name}' is empty`);
    return 0;
  }
  const count = (s: string) => rows.filter((r) => shown(r).startsWith(s)).length;
  io.out(`queue '${queue.name}': ${count('queued')} queued, ${count('running')} running, ${count('done')} done, ${count('failed')} failed`);
  const now = Date.now();
  const table = rows.map((r) => {
    const j = r.job;
    const when =
      r.state === 'completed' || r.state === 'failed'
        ? j.finishedOn && j.processedOn
          ? formatDuration(j.finishedOn - j.processedOn)
          : ''
        : `${formatDuration(now - j.timestamp)} ago`;
    const d = j.data as JobData | undefined;
    const what = d?.kind === 'stage' ? `stage ${d.stage}` : describeAssignment(d?.overrides ?? {});
    return [d?.name ?? j.name, shown(r), what, when, r.state === 'failed' ? (j.failedReason ?? '').slice(0, 100) : ''];
  });
  io.out(renderTable(['Job', 'State', 'Params', 'Time', 'Error'], table));
  return 0;
}

/** The job an argument names: an experiment recorded here, or a job id or name on the queue. */
async function findJob(store: ExpStore, queue: Queue, name: string): Promise<{ job?: Job<ExpJobData>; rec?: ExpRecord }> {
  const rec = store.exists(name) ? store.get(name) : undefined;
  if (rec?.distributed)
    return {
      job: (await queue.getJob(rec.distributed.jobId)) as Job<ExpJobData> | undefined,
      rec,
    };
  const byId = (await queue.getJob(name)) as Job<ExpJobData> | undefined;
  if (byId) return { job: byId };
  const rows = await allJobs(queue);
  const hit = rows.find((r) => r.job.data?.name === name);
  if (hit) return { job: hit.job };
  const names = [
    ...new Set([
      ...rows.map((r) => r.job.data?.name ?? ''),
      ...store
        .list()
        .filter((r) => r.distributed)
        .map((r) => r.name),
    ]),
  ];
  throw new UserError({
    message: `no job named '${name}' on queue '${queue.name}'`,
    hint: didYouMean(name, names) ?? "run 'lockstep queue status' to list them",
  });
}

async function logs({ io, ws, store, queue }: { io: Io; ws: Workspace; store: ExpStore; queue: Queue }, name: string): Promise<number> {
  const { job, rec } = await findJob(store, queue, name);
  const hash = (job?.returnvalue as ExpJobResult | undefined)?.log ?? (job?.progress as Partial<ExpJobProgress> | undefined)?.log ?? rec?.distributed?.log;
  if (!hash) {
    const state = job ? await job.getState() : 'unknown';
    throw new UserError(
      {
        message: `'${name}' has no log yet (${state === 'active' ? `running on ${workerOf(job!) ?? 'a worker'}` : state}); a worker stores it when the run ends`,
      },
      1,
    );
  }
  const cache = openLocalCache(ws.stateDir);
  if (!cache.store.has(hash)) {
    const { store: remote } = await remoteFor(ws, job?.data?.remote ?? rec?.distributed?.job.remote);
    try {
      const report = newReport();
      await fetchObjects(cache, remote, [hash], { jobs: 1, report, label: () => `log of ${name}` });
      if (!cache.store.has(hash))
        throw new UserError(
          {
            message: `the log of '${name}' (object ${hash}) is not on remote '${remote.name}'${report.failures.length ? `: ${report.failures[0]!.why}` : ''}`,
          },
          1,
        );
    } finally {
      await remote.close();
    }
  }
  io.stdout.write(fs.readFileSync(cache.store.pathOf(hash)));
  return 0;
}

async function retry(io: Io, store: ExpStore, queue: Queue, args: QueueArgs): Promise<number> {
  const targets: { name: string; job?: Job<ExpJobData>; rec?: ExpRecord }[] = [];
  if (args.failed) {
    for (const r of await allJobs(queue)) if (r.state === 'failed') targets.push({ name: r.job.data?.name ?? r.job.id!, job: r.job });
  } else {
    for (const n of args.names) targets.push({ name: n, ...(await findJob(store, queue, n)) });
  }
  if (targets.length === 0) {
    io.out('no failed jobs');
    return 0;
  }
  for (const t of targets) {
    const state = t.job ? await t.job.getState() : undefined;
    if (t.job && state !== 'failed')
      throw new UserError({
        message: `'${t.name}' is not failed (${state}); only failed jobs are retried`,
      });
    if (t.job)
      await t.job.retry('failed', {
        resetAttemptsMade: true,
        resetAttemptsStarted: true,
      });
    else if (t.rec?.distributed) await queue.add(t.rec.name, t.rec.distributed.job, jobOptions(t.rec.distributed.jobId));
    else
      throw new UserError({
        message: `'${t.name}' is not on queue '${queue.name}'`,
      });
    io.out(`requeued ${t.name}`);
  }
  await syncRecords(store, queue, { requeue: false });
  return 0;
}

async function cancel({ io, store, queue, cfg }: { io: Io; store: ExpStore; queue: Queue; cfg: SchedulerConfig }, args: QueueArgs): Promise<number> {
  const targets: { name: string; job: Job<ExpJobData> }[] = [];
  if (args.all) {
    for (const r of await allJobs(queue))
      if (r.state !== 'completed' && r.state !== 'failed') targets.push({ name: r.job.data?.name ?? r.job.id!, job: r.job });
  } else {
    for (const n of args.names) {
      const { job } = await findJob(store, queue, n);
      if (!job)
        throw new UserError({
          message: `'${n}' is not on queue '${queue.name}'`,
        });
      targets.push({ name: n, job });
    }
  }
  const client = await plainClient(cfg);
  try {
    for (const t of targets) {
      const state = await t.job.getState();
      if (state === 'completed' || state === 'failed') {
        io.out(`${t.name} already ${state === 'completed' ? 'done' : 'failed'}`);
        continue;
      }
      if (state === 'active') {
        // A running job's claim belongs to its worker: ask the worker to stop it (it checks every second).
        await client.set(cancelKey(cfg.prefix, queue.name, t.job.id!), '1', 'EX', 86400);
        io.out(`cancelling ${t.name} (running on ${workerOf(t.job) ?? 'a worker'})`);
        continue;
      }
      await t.job.remove();
      io.out(`cancelled ${t.name}`);
      const rec = store.list().find((r) => r.distributed?.jobId === t.job.id);
      if (rec)
        store.save({
          ...recordFromJob(rec, t.job, 'failed'),
          error: 'cancelled',
        });
    }
  } finally {
    await client.quit().catch(() => client.disconnect());
  }
  if (targets.length === 0) io.out('nothing to cancel');
  return 0;
}
