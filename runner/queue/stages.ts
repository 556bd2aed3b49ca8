import path from 'node:path';
import type { Job, Queue } from 'bullmq';
import { openWorkspace, saveCaches, STATE_DIR } from '../workspace.js';
import type { Io } from '../cli-io.js';
import { UserError } from '../errors.js';
import { VERSION } from '../version.js';
import { RepoLock } from '../repo-lock.js';
import type { LockEntry } from '../lockfile.js';
import { selectStages } from '../executor.js';
import { openLocalCache } from '../cache/open.js';
import { fetchOutputs, push } from '../cache/sync.js';
import { remoteFor } from '../remote/open.js';
import { checkoutOut, checkoutOutputs, lockedOuts, missingObjects } from '../cache/checkout.js';
import { formatDuration } from '../reporter.js';
import { requireSchedulerConfig } from './config.js';
import { openQueue } from './connection.js';
import { stageJobIdOf, type StageJobData, type StageJobResult } from './job.js';
import { cleanCommit, uploadBundle, withTimeout } from './submitter.js';
import { jobOptions } from './sync.js';

export interface DistributedReproArgs {
  readonly targets: readonly string[];
  readonly remote?: string;
}

/**
 * `repro --distributed`: each stage of the DAG becomes a job once its
 * upstream stages are done; a worker restores the upstream outputs from the
 * remote (their lock entries travel in the job) and runs or restores the
 * stage. Job ids are digests of the commit, the stage and its upstream
 * results, so a submitter started again finds its finished jobs and queues
 * the rest: its state is rebuilt from the queue and, for jobs Redis lost,
 * from the run-cache (the stage is restored, not rerun). At the end the lock
 * entries are written to pipeline.lock and the outputs fetched, as a local
 * `repro` would leave them.
 */
export async function reproDistributed(io: Io, args: DistributedReproArgs): Promise<number> {
  const t0 = Date.now();
  const ws = openWorkspace(io.cwd, { checkDeps: true });
  const cfg = requireSchedulerConfig(ws.stateDir);
  const commit = cleanCommit(ws.root);
  const { cfg: rcfg, store: remote } = await remoteFor(ws, args.remote);
  let queue: Queue | undefined;
  try {
    if (rcfg.readOnly)
      throw new UserError({ message: `remote '${rcfg.name}' is read-only: repro --distributed passes stage outputs between workers through it` });
    queue = await openQueue(cfg);
    const bundle = await uploadBundle(ws.root, remote);
    const cache = openLocalCache(ws.stateDir);
    await push(
      cache,
      remote,
      lockedOuts(ws, []).map(({ out }) => ({ path: out.path, out })),
      [],
      { jobs: rcfg.jobs },
    );

    const selected = selectStages(ws, { targets: args.targets, single: false, downstream: false });
    const order = ws.graph.order.filter((s) => selected.has(s));
    const ups = (s: string) => [...ws.graph.closure([s], 'up')].filter((u) => u !== s && selected.has(u));
    const done = new Map<string, StageJobResult>();
    const failed = new Map<string, string>();
    const jobs = new Map<string, { id: string; data: StageJobData }>();
    const said = new Map<string, string>();
    const say = (stage: string, line: string) => {
      if (said.get(stage) === line) return;
      said.set(stage, line);
      io.out(line);
    };
    let down = false;
    while (done.size + failed.size < order.length) {
      try {
        await withTimeout(
          (async () => {
            for (const s of order) {
              if (done.has(s) || failed.has(s) || jobs.has(s)) continue;
              const before = ups(s);
              const bad = before.find((u) => failed.has(u));
              if (bad) {
                failed.set(s, `upstream stage '${bad}' did not complete`);
                say(s, `- ${s}: not run (upstream stage '${bad}' did not complete)`);
                continue;
              }
              // Queued only when every upstream stage is done: its job carries their results.
              if (!before.every((u) => done.has(u))) continue;
              const upstream: Record<string, LockEntry> = Object.fromEntries(before.map((u) => [u, done.get(u)!.entry]));
              const data: StageJobData = {
                kind: 'stage',
                version: VERSION,
                name: s,
                stage: s,
                commit,
                bundle,
                remote: rcfg.name,
                upstream,
                submittedAt: new Date().toISOString(),
              };
              jobs.set(s, { id: stageJobIdOf(data), data });
            }
            for (const [s, { id, data }] of jobs) {
              if (done.has(s) || failed.has(s)) continue;
              let job = (await queue!.getJob(id)) as Job<StageJobData> | undefined;
              // Absent: never queued, or lost by a Redis that restarted without its data.
              if (!job) job = (await queue!.add(s, data, jobOptions(id))) as Job<StageJobData>;
              const state = await job.getState();
              // Read the job again once it is finished: fetched while it ran, it lacks the result its state now promises.
              if (state === 'completed' || state === 'failed') job = ((await queue!.getJob(id)) as Job<StageJobData> | undefined) ?? job;
              const where = job.processedBy ?? (job.progress as { worker?: string } | undefined)?.worker;
              if (state === 'completed') {
                const r = job.returnvalue as StageJobResult | null;
                if (!r?.entry) continue; // its result not readable yet: next round
                done.set(s, r);
                const mark = r.how === 'ran' ? '✓' : r.how === 'restored' ? '↺' : '·';
                say(s, `${mark} ${s}: ${r.how === 'skipped' ? 'up to date' : r.how} on ${r.worker} in ${formatDuration(r.durationMs)}`);
              } else if (state === 'failed') {
                failed.set(s, job.failedReason);
                say(s, `✗ ${s}: failed: ${job.failedReason}`);
              } else if (state === 'active' && where) say(s, `▶ ${s}: running on ${where}`);
              else say(s, `… ${s}: queued`);
            }
          })(),
          15_000,
        );
        if (down) io.err('scheduler is back');
        down = false;
      } catch (e) {
        if (e instanceof UserError) throw e;
        if (!down) io.err(`warning: scheduler unreachable (${(e as Error).message}); waiting for it`);
        down = true;
      }
      if (done.size + failed.size < order.length) await new Promise((r) => setTimeout(r, 300));
    }

    // The workspace ends as a local repro leaves it: lock entries written, outputs in place.
    const repoLock = await RepoLock.acquire(path.join(ws.root, STATE_DIR), 'repro --distributed', 0);
    try {
      const fresh = openWorkspace(io.cwd, { checkDeps: false });
      for (const [s, r] of done) fresh.lock.set(s, r.entry);
      fresh.lock.write(fresh.graph.order);
      const names = [...done.keys()];
      // Every output, metrics kept in git included: workers pushed them all with their run-cache entries.
      const all = [...done.values()].flatMap((r) => r.entry.outs.map((o) => ({ path: o.path, out: o })));
      const report = await fetchOutputs(cache, remote, all, { jobs: rcfg.jobs });
      for (const f of report.failures) io.err(`✗ ${f.what}: ${f.why}`);
      const cached = new Set(lockedOuts(fresh, names).map(({ out }) => out.path));
      for (const { out } of all) {
        if (cached.has(out.path) || (await missingObjects(cache.store, out)).length) continue;
        const now = await fresh.hasher.hashPath(path.join(fresh.root, out.path));
        if (now.kind === 'missing' || now.hash !== out.hash) await checkoutOut(cache.store, fresh.root, out, 'copy');
      }
      for (const i of await checkoutOutputs(fresh, cache, { targets: names })) if (i.outcome === 'refused') io.err(`✗ ${i.path}: ${i.detail}`);
      saveCaches(fresh);
    } finally {
      repoLock.release();
    }
    const count = (how: string) => [...done.values()].filter((r) => r.how === how).length;
    const parts = [
      `${count('ran')} ran`,
      count('restored') ? `${count('restored')} restored` : '',
      `${count('skipped')} up to date`,
      failed.size ? `${failed.size} failed or not run` : '',
    ].filter(Boolean);
    io.out(`${order.length} stage${order.length === 1 ? '' : 's'} on workers: ${parts.join(', ')} in ${formatDuration(Date.now() - t0)}`);
    return failed.size ? 1 : 0;
  } finally {
    await queue?.close();
    await remote.close();
  }
}
