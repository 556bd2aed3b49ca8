import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UserError, withFileLock } from '../../runner/api.js';
import { classificationMetrics } from '../../stages/lib/models/metrics.js';
import { ModelRegistry, type NewVersion } from '../../stages/lib/registry/registry.js';
import { registerSelection, type Selection } from '../../stages/lib/registry/registration.js';
import { RunStore } from '../../stages/lib/registry/run-store.js';
import { newRunId, type RunRecord } from '../../stages/lib/registry/run-record.js';
import { tempDir } from './fixtures.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
const root = (): string => {
  const d = tempDir();
  dirs.push(d);
  return d;
};

/** Metrics whose test F1 (weighted) grows with `good` (0..4 wrong predictions out of 8). */
function metricsWith(wrong: number) {
  const y = [1, 1, 1, 1, 0, 0, 0, 0] as const;
  return classificationMetrics(
    [...y],
    y.map((v, i) => (i < wrong ? ((1 - v) as 0 | 1) : v)),
  );
}

function version(name: string, wrong: number, model = name): NewVersion {
  return {
    name,
    family: 'logistic_regression',
    model_md5: model,
    data_checksum: 'd',
    params: {},
    run_id: null,
    lock_entry: {},
    objects: { model: model.padEnd(16, '0').slice(0, 16), cleaning: '0'.repeat(16), features: '1'.repeat(16) },
    metrics: { train: metricsWith(wrong), test: metricsWith(wrong) },
    contents: { model: `{"m":"${model}"}`, cleaning: '{}', features: '{}' },
  };
}

describe('model registry', () => {
  it('numbers versions, keeps one Staging and one Production, archiving the previous holder', async () => {
    const reg = new ModelRegistry(root());
    const v1 = await reg.register(version('a', 2));
    const v2 = await reg.register(version('b', 1));
    expect([v1.version, v2.version, v1.stage]).toEqual([1, 2, 'None']);
    await reg.transition(1, 'Staging');
    await reg.transition(2, 'Staging');
    expect(reg.get(1).stage).toBe('Archived');
    expect(reg.get(2).stage).toBe('Staging');
    await expect(reg.transition(1, 'Production', { requireFrom: 'Staging' })).rejects.toThrow(
      /version 1 is in Archived; only a Staging version can move to Production/,
    );
    await reg.transition(2, 'Production', { requireFrom: 'Staging' });
    expect(reg.inStage('Production')?.version).toBe(2);
    expect(reg.inStage('Staging')).toBeUndefined();
    expect(reg.get(2).history.map((h) => h.stage)).toEqual(['None', 'Staging', 'Production']);
    expect(fs.readFileSync(reg.filePath(reg.get(2), 'model'), 'utf8')).toBe('{"m":"b"}');
    await expect(reg.transition(9, 'Staging')).rejects.toThrow(/no model version 9/);
  });

  it('a crash before the index is renamed loses nothing: the old index stays valid', async () => {
    const dir = root();
    const reg = new ModelRegistry(dir);
    await reg.register(version('a', 2));
    // What a crash mid-write leaves: a half-written temp file and a version folder the index does not name.
    fs.writeFileSync(path.join(reg.dir, '.index.json.999.1.tmp'), '{"format":"lead-reg');
    fs.mkdirSync(path.join(reg.dir, 'v2'));
    expect(new ModelRegistry(dir).list().map((v) => v.version)).toEqual([1]);
    const v = await new ModelRegistry(dir).register(version('b', 1));
    expect(v.version).toBe(2);
    expect(new ModelRegistry(dir).list().map((x) => x.name)).toEqual(['a', 'b']);
  });

  it('a stale lock left by a dead process is taken over', async () => {
    const reg = new ModelRegistry(root());
    fs.mkdirSync(reg.dir, { recursive: true });
    fs.writeFileSync(path.join(reg.dir, '.lock'), '999999999');
    await expect(reg.register(version('a', 1))).resolves.toMatchObject({ version: 1 });
  });

  it('a change waits for a live holder, then gives up with exit 3 naming the lock and who holds it, changing nothing', async () => {
    const dir = root();
    const reg = new ModelRegistry(dir, () => new Date(), 300);
    await reg.register(version('a', 1));
    const t0 = Date.now();
    await withFileLock(
      path.join(reg.dir, '.lock'),
      async () => {
        const err = await reg.register(version('b', 1)).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(UserError);
        expect((err as UserError).exitCode).toBe(3);
        expect((err as Error).message).toMatch(
          new RegExp(`^another lockstep \\(pid ${process.pid}, running 'a test holding it' since .*\\) holds the model registry lock$`),
        );
      },
      { label: 'the model registry lock', what: 'a test holding it' },
    );
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(new ModelRegistry(dir).list().map((v) => v.name)).toEqual(['a']);
    // Released: the next change goes through.
    await expect(reg.register(version('b', 1))).resolves.toMatchObject({ version: 2 });
  });
});

describe('registering the workspace selection', () => {
  const sel = (name: string, wrong: number, cleaning = '{}'): Selection => ({
    name,
    metrics: { family: 'logistic_regression', best_params: { C: 1 }, train: metricsWith(wrong), test: metricsWith(wrong) },
    dataChecksum: 'x',
    contents: { model: `{"m":"${name}"}`, cleaning, features: '{}' },
    objects: { model: name.padEnd(16, 'a'), cleaning: cleaning === '{}' ? 'c'.repeat(16) : 'd'.repeat(16), features: 'f'.repeat(16) },
    runId: null,
    lockEntry: { train: null },
  });

  it('registers a new selection into Staging, and maps the same files to the same version', async () => {
    const reg = new ModelRegistry(root());
    const first = await registerSelection(reg, sel('xgb', 1));
    expect([first.kind, first.version.version, first.version.stage]).toEqual(['registered', 1, 'Staging']);
    const again = await registerSelection(reg, sel('xgb', 1));
    expect([again.kind, again.version.version]).toEqual(['known', 1]);
    // The same model with other cleaning artifacts predicts differently: a version of its own.
    const other = await registerSelection(reg, sel('xgb', 1, '{"x":1}'));
    expect([other.kind, other.version.version]).toEqual(['registered', 2]);
    expect(reg.list().map((v) => v.objects.model)).toEqual(['xgbaaaaaaaaaaaaa', 'xgbaaaaaaaaaaaaa']);
  });

  it('keeps Production when it is at least as good (the new version waits in None); stages a better one', async () => {
    const reg = new ModelRegistry(root());
    await registerSelection(reg, sel('a', 1));
    await reg.transition(1, 'Production', { requireFrom: 'Staging' });
    const worse = await registerSelection(reg, sel('b', 2));
    expect(worse.kind === 'registered' && worse.decision.action).toBe('keep_production');
    const better = await registerSelection(reg, sel('c', 0));
    expect(better.kind === 'registered' && better.decision.action).toBe('register');
    const best2 = await registerSelection(reg, sel('d', 0));
    expect(best2.kind === 'registered' && best2.decision.action).toBe('register');
    expect(reg.list().map((v) => `${v.version}:${v.name}:${v.stage}`)).toEqual(['1:a:Production', '2:b:None', '3:c:Archived', '4:d:Staging']);
  });
});

describe('run store', () => {
  it('files runs atomically, once each, and finds them by id or unique prefix', () => {
    const store = new RunStore(root());
    const m = metricsWith(1);
    const rec: RunRecord = {
      id: newRunId(new Date('2024-05-01T10:00:00.000Z')),
      stage: 'train',
      model: 'lr',
      family: 'logistic_regression',
      started_at: '2024-05-01T10:00:00.000Z',
      finished_at: '2024-05-01T10:00:01.000Z',
      duration_ms: 1000,
      git: null,
      data_checksum: 'abc',
      params: { C: 1 },
      metrics: { train: m, test: m, cv_score: 0.8 },
      artifacts: { model: { path: 'data/models/lr.json', hash: '0123456789abcdef' } },
    };
    expect(rec.id).toMatch(/^20240501T100000Z-[0-9a-f]{8}$/);
    expect(store.add(rec)).toBe(true);
    expect(store.add(rec)).toBe(false);
    expect(store.list()).toEqual([rec]);
    expect(store.get(rec.id.slice(0, 20)).model).toBe('lr');
    expect(() => store.get('1999')).toThrow(/no run '1999'/);
    expect(fs.readdirSync(path.join(store.dir, rec.id))).toEqual(['run.json']);
  });
});
