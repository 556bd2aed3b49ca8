import { describe, expect, it } from 'vitest';
import { blockedBy, decide, reasonsOf, runOk, type DecideInput, type DecideOptions, type Upstream } from '../../../runner/decide.js';
import type { LockEntry } from '../../../runner/lockfile.js';
import type { Reason } from '../../../runner/staleness.js';

// The decision is pure: every outcome is reached here from hand-made facts, no files, no processes.
const lock: LockEntry = {
  cmd: 'make',
  deps: [{ path: 'data/clean.csv', hash: 'c1', size: 1 }],
  params: {},
  outs: [{ path: 'model.bin', hash: 'm1', size: 1 }],
};
const plain = { frozen: false, alwaysChanged: false };
const opts = (o: Partial<DecideOptions> = {}): DecideOptions => ({ force: false, dry: false, allowMissing: false, ...o });
const run = (o: Partial<DecideInput> & { reasons?: readonly Reason[] } = {}) => decide({ stage: plain, reasons: [], lock, upstream: [], opts: opts(), ...o });

const depChanged: Reason = { kind: 'dep-changed', path: 'data/clean.csv' };
const depMissing: Reason = { kind: 'dep-missing', path: 'data/clean.csv' };
const outMissing: Reason = { kind: 'out-missing', path: 'model.bin' };
const pending = (name: string, ...outs: string[]): Upstream => ({ name, kind: 'pending', outs });

describe('decide', () => {
  it('up-to-date: nothing changed', () => {
    expect(run()).toEqual({ kind: 'up-to-date', leftMissing: new Map() });
    expect(run({ opts: opts({ dry: true }) })).toEqual({ kind: 'up-to-date', leftMissing: new Map() });
  });

  it('restore-or-run: a stale stage may have its outputs in the cache', () => {
    expect(run({ reasons: [depChanged] })).toEqual({ kind: 'restore-or-run', reasons: [depChanged] });
  });

  it('run: forced, or always_changed, skip the cache', () => {
    expect(run({ opts: opts({ force: true }) })).toEqual({ kind: 'run', reasons: [{ kind: 'forced' }] });
    expect(run({ reasons: [depChanged], opts: opts({ force: true }) })).toEqual({ kind: 'run', reasons: [depChanged] });
    expect(run({ stage: { frozen: false, alwaysChanged: true }, reasons: [{ kind: 'always-changed' }] })).toEqual({
      kind: 'run',
      reasons: [{ kind: 'always-changed' }],
    });
  });

  it('would-run: a dry run says why and runs nothing', () => {
    expect(run({ reasons: [depChanged], opts: opts({ dry: true }) })).toEqual({ kind: 'would-run', reasons: [depChanged] });
    expect(run({ opts: opts({ dry: true, force: true }) })).toEqual({ kind: 'would-run', reasons: [{ kind: 'forced' }] });
  });

  it('frozen: never run, even forced, but says what changed', () => {
    const frozen = { frozen: true, alwaysChanged: false };
    expect(run({ stage: frozen, reasons: [depChanged], opts: opts({ force: true }) })).toEqual({ kind: 'frozen', reasons: [depChanged] });
    expect(run({ stage: frozen })).toEqual({ kind: 'frozen', reasons: [] });
  });

  it('blocked: an upstream stage that did not complete wins over everything, and is named', () => {
    const upstream: Upstream[] = [
      { name: 'a', kind: 'current' },
      { name: 'b', kind: 'incomplete' },
      { name: 'c', kind: 'incomplete' },
    ];
    expect(run({ upstream, reasons: [depChanged], stage: { frozen: true, alwaysChanged: false } })).toEqual({ kind: 'blocked', by: 'b' });
    expect(blockedBy(upstream)).toBe('b');
    expect(blockedBy([{ name: 'a', kind: 'current' }])).toBeUndefined();
  });

  it('a stage downstream of one that would run is stale too, and a dep that stage makes is not missing', () => {
    const d = run({ reasons: [depMissing], upstream: [pending('train', 'models'), pending('clean', 'data/clean.csv')], opts: opts({ dry: true }) });
    // Named by upstream stage, sorted, so status and repro --dry print the same lines whatever the graph's order.
    expect(d).toEqual({
      kind: 'would-run',
      reasons: [
        { kind: 'upstream-stale', stage: 'clean' },
        { kind: 'upstream-stale', stage: 'train' },
      ],
    });
    // A missing dep nothing upstream is making stays missing.
    expect(reasonsOf(run({ reasons: [depMissing], upstream: [pending('train', 'models')], opts: opts({ dry: true }) }))).toEqual([
      depMissing,
      { kind: 'upstream-stale', stage: 'train' },
    ]);
    // A frozen stage downstream of a stale one is still frozen, and says so.
    expect(run({ stage: { frozen: true, alwaysChanged: false }, upstream: [pending('clean', 'data/clean.csv')], opts: opts({ dry: true }) })).toEqual({
      kind: 'frozen',
      reasons: [{ kind: 'upstream-stale', stage: 'clean' }],
    });
  });

  describe('--allow-missing', () => {
    it('counts a stage whose only change is missing outputs as up to date, and hands its outputs on as left missing', () => {
      expect(run({ reasons: [outMissing], opts: opts({ allowMissing: true }) })).toEqual({ kind: 'up-to-date', leftMissing: new Map([['model.bin', 'm1']]) });
      // Without the option, or with another change, or never run, it is stale.
      expect(run({ reasons: [outMissing] }).kind).toBe('restore-or-run');
      expect(run({ reasons: [outMissing, depChanged], opts: opts({ allowMissing: true }) }).kind).toBe('restore-or-run');
      expect(run({ lock: undefined, reasons: [{ kind: 'never-run' }, outMissing], opts: opts({ allowMissing: true }) }).kind).toBe('restore-or-run');
    });

    it('lets a dep stay missing only when upstream left exactly the version this stage read', () => {
      const left = (hash: string): Upstream => ({ name: 'clean', kind: 'current', leftMissing: new Map([['data/clean.csv', hash]]) });
      expect(run({ reasons: [depMissing, outMissing], upstream: [left('c1')], opts: opts({ allowMissing: true }) }).kind).toBe('up-to-date');
      expect(run({ reasons: [depMissing, outMissing], upstream: [left('c0')], opts: opts({ allowMissing: true }) }).kind).toBe('restore-or-run');
      expect(run({ reasons: [depMissing], opts: opts({ allowMissing: true }) }).kind).toBe('restore-or-run');
    });
  });
});

describe('runOk', () => {
  it('is false when a stage failed, was blocked, not run or interrupted; true otherwise', () => {
    const fine = ['done', 'restored', 'skipped', 'frozen', 'would-run'].map((state) => ({ state }));
    expect(runOk(fine)).toBe(true);
    expect(runOk([])).toBe(true);
    for (const state of ['failed', 'blocked', 'not-run', 'interrupted']) expect(runOk([...fine, { state }])).toBe(false);
  });
});
