import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readSchedulerConfig, redactUrl, requireSchedulerConfig } from '../../runner/queue/config.js';
import { jobIdOf, refusal, type ExpJobData } from '../../runner/queue/job.js';
import { recordFromJob, syncRecords } from '../../runner/queue/sync.js';
import { ExpStore, type ExpRecord } from '../../runner/exp/store.js';
import { UserError, formatDiagnostic } from '../../runner/errors.js';

let dir: string;
afterEach(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

function stateDir(files: Record<string, string>): string {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-qcfg-'));
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text);
  return dir;
}

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof UserError) return e.diagnostics.map(formatDiagnostic).join('\n');
    throw e;
  }
  throw new Error('expected a UserError');
}

/** An experiment job as the submitter queues it (version 0.1.0, commit ccc…, remote 'origin'), with `over` changed. */
function expJob(over: Partial<ExpJobData> = {}): ExpJobData {
  return {
    kind: 'experiment',
    version: '0.1.0',
    name: 'exp-1',
    commit: 'c'.repeat(40),
    remote: 'origin',
    overrides: {},
    targets: [],
    submittedAt: '',
    ...over,
  };
}

describe('scheduler configuration', () => {
  it('reads config, overlays config.local key by key, and lets LOCKSTEP_SCHEDULER_URL override the url', () => {
    const d = stateDir({
      config: 'scheduler:\n  url: redis://queue.example:6379\n  prefix: team-a\n',
      'config.local': 'scheduler:\n  url: redis://:secret@queue.example:6379/2\n  stalled_interval_ms: 500\n',
    });
    expect(readSchedulerConfig(d, {})).toEqual({
      url: 'redis://:secret@queue.example:6379/2',
      prefix: 'team-a',
      queue: 'experiments',
      lockDurationMs: 30000,
      stalledIntervalMs: 500,
    });
    expect(readSchedulerConfig(d, { LOCKSTEP_SCHEDULER_URL: 'rediss://other:6380' })!.url).toBe('rediss://other:6380');
    expect(readSchedulerConfig(d, { LOCKSTEP_SCHEDULER_QUEUE: 'ci-123' })!.queue).toBe('ci-123');
    expect(redactUrl('redis://user:secret@host:1/0')).toBe('redis://user:***@host:1/0');
  });

  it('is absent without a url, and says how to add one when a command needs it', () => {
    const d = stateDir({ config: 'remotes:\n  origin: {url: /tmp/x}\n' });
    expect(readSchedulerConfig(d, {})).toBeUndefined();
    expect(errorOf(() => requireSchedulerConfig(d, {}))).toContain("error: no scheduler is configured\n  hint: add 'scheduler: {url: redis://HOST:6379}'");
  });

  it('names the file, line and key of a mistake', () => {
    expect(errorOf(() => readSchedulerConfig(stateDir({ config: 'scheduler:\n  url: redis://h:1\n  lock_duration: 5\n' }), {}))).toBe(
      ".lockstep/config:3:3: error: unknown field 'scheduler.lock_duration'; did you mean 'lock_duration_ms'?",
    );
    expect(errorOf(() => readSchedulerConfig(stateDir({ config: 'scheduler:\n  url: http://h:1\n' }), {}))).toBe(
      ".lockstep/config:2:8: error: scheduler.url must be a redis:// or rediss:// URL, got 'http://h:1'",
    );
    expect(errorOf(() => readSchedulerConfig(stateDir({ config: 'scheduler:\n  url: redis://h:1\n  queue: "a b"\n' }), {}))).toContain(
      "scheduler.queue must be a name of letters, digits, '.', '_' and '-'",
    );
    expect(errorOf(() => readSchedulerConfig(stateDir({ config: 'scheduler: redis://h\n' }), {}))).toContain('`scheduler` must be a mapping');
    expect(errorOf(() => readSchedulerConfig(stateDir({}), { LOCKSTEP_SCHEDULER_URL: 'h:6379' }))).toBe(
      "LOCKSTEP_SCHEDULER_URL: error: scheduler.url must be a redis:// or rediss:// URL, got 'h:6379'",
    );
  });
});

describe('job ids', () => {
  const base = { commit: 'a'.repeat(40), overrides: { 'params.yaml': { 'train.lr': 0.1, 'split.seed': 2 } }, targets: [] as string[] };

  it('depend on what the job computes, not on key order or names', () => {
    const same = { ...base, overrides: { 'params.yaml': { 'split.seed': 2, 'train.lr': 0.1 } } };
    expect(jobIdOf(same)).toBe(jobIdOf(base));
    expect(jobIdOf(base)).toMatch(/^x[0-9a-f]{24}$/);
    expect(jobIdOf({ ...base, commit: 'b'.repeat(40) })).not.toBe(jobIdOf(base));
    expect(jobIdOf({ ...base, overrides: { 'params.yaml': { 'train.lr': 0.2, 'split.seed': 2 } } })).not.toBe(jobIdOf(base));
    expect(jobIdOf({ ...base, targets: ['train'] })).not.toBe(jobIdOf(base));
  });

  it('a worker refuses jobs of another version or of unknown shape, saying why', () => {
    const job = expJob({ commit: base.commit });
    expect(refusal(job, '0.1.0')).toBeUndefined();
    expect(refusal({ ...job, version: '9.9.9' }, '0.1.0')).toBe(
      'it was queued by Lockstep 9.9.9 and this worker runs 0.1.0; run a 9.9.9 worker, or queue it again with this version',
    );
    expect(refusal({ name: 'x' } as never, '0.1.0')).toBe('it is not a Lockstep job');
  });
});

describe('records from job states', () => {
  const job = expJob({ overrides: { 'params.yaml': { 'train.lr': 0.2 } } });
  const rec: ExpRecord = {
    name: 'exp-1',
    status: 'queued',
    createdAt: '2026-01-01T00:00:00.000Z',
    overrides: job.overrides,
    distributed: { jobId: 'x1', queue: 'q', job },
  };
  const fake = (over: Record<string, unknown>) => ({ progress: {}, finishedOn: Date.UTC(2026, 0, 2), ...over }) as never;

  it('a finished job gives the record its results, worker and log', () => {
    const r = recordFromJob(
      rec,
      fake({
        returnvalue: {
          worker: 'w1:7',
          durationMs: 1234,
          log: 'abcdef0123456789',
          metrics: { 'm.json': { f1: 0.8 } },
          params: {},
          paramsText: {},
          metricsText: {},
          lock: {},
        },
      }),
      'completed',
    );
    expect(r).toMatchObject({
      status: 'success',
      durationMs: 1234,
      metrics: { 'm.json': { f1: 0.8 } },
      finishedAt: '2026-01-02T00:00:00.000Z',
      distributed: { jobId: 'x1', worker: 'w1:7', log: 'abcdef0123456789' },
    });
    expect(r.error).toBeUndefined();
  });

  it('a failed job keeps its reason and the log hash its worker reported', () => {
    const r = recordFromJob(rec, fake({ failedReason: 'train: failed in 1s: exit code 3', progress: { worker: 'w2:8', log: '0123456789abcdef' } }), 'failed');
    expect(r).toMatchObject({ status: 'failed', error: 'train: failed in 1s: exit code 3', distributed: { worker: 'w2:8', log: '0123456789abcdef' } });
  });

  it('running names the worker; back in the queue clears an old failure', () => {
    expect(recordFromJob(rec, fake({ processedBy: 'w3:9' }), 'active')).toMatchObject({ status: 'running', distributed: { worker: 'w3:9' } });
    const requeued = recordFromJob({ ...rec, status: 'failed', error: 'old', finishedAt: 'x' }, fake({}), 'waiting');
    expect(requeued.status).toBe('queued');
    expect(requeued.error).toBeUndefined();
    expect(requeued.finishedAt).toBeUndefined();
  });
});

describe('collecting results', () => {
  const job = expJob();
  const result = { worker: 'w:1', durationMs: 5, metrics: { 'm.json': { f1: 1 } }, params: {}, paramsText: {}, metricsText: {}, lock: {} };

  function storeWithOne(): ExpStore {
    const store = new ExpStore(stateDir({}));
    store.save({ name: 'exp-1', status: 'running', createdAt: '2026-01-01T00:00:00.000Z', overrides: {}, distributed: { jobId: 'x1', queue: 'q', job } });
    return store;
  }
  /** A job fetched while it ran (no result yet) whose state, read a moment later, is 'completed'. */
  const fetchedWhileRunning = { getState: async () => 'completed', returnvalue: null, progress: {} };

  it('a job that finished between being fetched and its state being read is read again', async () => {
    const store = storeWithOne();
    let calls = 0;
    const queue = { name: 'q', getJob: async () => (calls++ === 0 ? fetchedWhileRunning : { ...fetchedWhileRunning, returnvalue: result, finishedOn: 0 }) };
    await syncRecords(store, queue as never, { requeue: false });
    expect(store.get('exp-1')).toMatchObject({ status: 'success', metrics: { 'm.json': { f1: 1 } } });
  });

  it('a result that cannot be read yet leaves the record as it was', async () => {
    const store = storeWithOne();
    const queue = { name: 'q', getJob: async () => fetchedWhileRunning };
    const r = await syncRecords(store, queue as never, { requeue: false });
    expect(r.changed).toEqual([]);
    expect(store.get('exp-1').status).toBe('running');
  });
});
