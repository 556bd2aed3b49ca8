import { describe, expect, it } from 'vitest';
import { describeReason, staleReasons, type Reason } from '../../../runner/staleness.js';
import type { LockEntry } from '../../../runner/lockfile.js';
import type { Inputs, Observed } from '../../../runner/observe.js';

// In process, no files: staleReasons is pure, so every rule is checked on hand-made inputs.
const file = (path: string, hash: string): Observed => ({ path, state: { kind: 'file', hash, size: 1 } });
const missing = (path: string): Observed => ({ path, state: { kind: 'missing' } });
const locked = (path: string, hash: string) => ({ path, hash, size: 1 });

const lock: LockEntry = {
  cmd: 'python train.py',
  deps: [locked('data.csv', 'd1'), locked('train.py', 't1')],
  params: { 'params.yaml': { 'train.lr': 0.1, model: { depth: 3, kind: 'tree' } } },
  outs: [locked('model.bin', 'm1')],
};
const inputs: Inputs = {
  cmd: 'python train.py',
  deps: [file('data.csv', 'd1'), file('train.py', 't1')],
  params: { 'params.yaml': { 'train.lr': 0.1, model: { depth: 3, kind: 'tree' } } },
};
const outs = [file('model.bin', 'm1')];
const reasons = (over: { lock?: LockEntry | undefined; inputs?: Partial<Inputs>; outs?: Observed[]; alwaysChanged?: boolean }): Reason[] =>
  staleReasons({
    lock: 'lock' in over ? over.lock : lock,
    inputs: { ...inputs, ...over.inputs },
    outs: over.outs ?? outs,
    alwaysChanged: over.alwaysChanged ?? false,
  });

describe('staleReasons', () => {
  it('finds nothing when inputs and outputs are as locked', () => {
    expect(reasons({})).toEqual([]);
  });

  it('says never-run without a lock entry, and still names a missing dep', () => {
    expect(reasons({ lock: undefined })).toEqual([{ kind: 'never-run' }]);
    expect(reasons({ lock: undefined, inputs: { deps: [missing('data.csv')] } })).toEqual([{ kind: 'never-run' }, { kind: 'dep-missing', path: 'data.csv' }]);
  });

  it('names the changed command, dep, and added, removed or missing deps', () => {
    expect(reasons({ inputs: { cmd: 'python train.py --fast' } })).toEqual([{ kind: 'cmd-changed', old: 'python train.py', new: 'python train.py --fast' }]);
    expect(reasons({ inputs: { deps: [file('data.csv', 'd2'), file('train.py', 't1')] } })).toEqual([{ kind: 'dep-changed', path: 'data.csv' }]);
    expect(reasons({ inputs: { deps: [file('data.csv', 'd1'), file('train.py', 't1'), file('extra.csv', 'e')] } })).toEqual([
      { kind: 'dep-added', path: 'extra.csv' },
    ]);
    expect(reasons({ inputs: { deps: [file('data.csv', 'd1')] } })).toEqual([{ kind: 'dep-removed', path: 'train.py' }]);
    // A missing dep is said once, as missing, not also as changed.
    expect(reasons({ inputs: { deps: [missing('data.csv'), file('train.py', 't1')] } })).toEqual([{ kind: 'dep-missing', path: 'data.csv' }]);
  });

  it('reports a tracked section by the leaf keys that changed', () => {
    const r = reasons({ inputs: { params: { 'params.yaml': { 'train.lr': 0.2, model: { depth: 4, kind: 'tree', seed: 1 } } } } });
    expect(r).toEqual([
      { kind: 'param-changed', file: 'params.yaml', key: 'model.depth', old: 3, new: 4 },
      { kind: 'param-added', file: 'params.yaml', key: 'model.seed', value: 1 },
      { kind: 'param-changed', file: 'params.yaml', key: 'train.lr', old: 0.1, new: 0.2 },
    ]);
    expect(r.map(describeReason)).toEqual([
      'param changed: model.depth: 3 -> 4 (params.yaml)',
      'param added: model.seed = 1 (params.yaml)',
      'param changed: train.lr: 0.1 -> 0.2 (params.yaml)',
    ]);
    expect(reasons({ inputs: { params: { 'params.yaml': { model: { depth: 3, kind: 'tree' } } } } })).toEqual([
      { kind: 'param-removed', file: 'params.yaml', key: 'train.lr' },
    ]);
  });

  it('names missing, modified, added and removed outputs', () => {
    expect(reasons({ outs: [missing('model.bin')] })).toEqual([{ kind: 'out-missing', path: 'model.bin' }]);
    expect(reasons({ outs: [file('model.bin', 'm2')] })).toEqual([{ kind: 'out-modified', path: 'model.bin' }]);
    expect(reasons({ outs: [file('model.bin', 'm1'), file('report.txt', 'r')] })).toEqual([{ kind: 'out-added', path: 'report.txt' }]);
    expect(reasons({ outs: [] })).toEqual([{ kind: 'out-removed', path: 'model.bin' }]);
  });

  it('always_changed makes a current stage stale', () => {
    expect(reasons({ alwaysChanged: true })).toEqual([{ kind: 'always-changed' }]);
  });

  it('treats the container image as an input', () => {
    const boxed: LockEntry = { ...lock, container: { image: 'debian:12', id: 'sha256:a' } };
    expect(reasons({ lock: boxed, inputs: { container: { image: 'debian:12', id: 'sha256:a' } } })).toEqual([]);
    expect(reasons({ lock: boxed, inputs: { container: { image: 'debian:12', id: 'sha256:b' } } })).toEqual([
      { kind: 'image-changed', image: 'debian:12', old: 'sha256:a', new: 'sha256:b' },
    ]);
    expect(reasons({ lock: boxed, inputs: { container: { image: 'debian:12', id: undefined } } })).toEqual([{ kind: 'image-missing', image: 'debian:12' }]);
    expect(reasons({ lock: boxed })).toEqual([{ kind: 'image-removed', image: 'debian:12' }]);
    expect(reasons({ inputs: { container: { image: 'debian:12', id: 'sha256:a' } } })).toEqual([{ kind: 'image-added', image: 'debian:12' }]);
  });
});
