import { describe, expect, it } from 'vitest';
import { diffFlat } from '../../../runner/metrics/diff.js';

// In process: the comparison behind `params diff`, `metrics diff`, `exp diff` and the UI's compare view.
describe('diffFlat', () => {
  const a = {
    'params.yaml': { 'train.lr': 0.1, 'train.epochs': 10, 'train.model': 'lr' },
    'metrics.json': { auc: 0.8 },
  };

  it('lists only changed keys, sorted by file then key, with the numeric change', () => {
    const b = {
      'params.yaml': {
        'train.lr': 0.05,
        'train.epochs': 10,
        'train.model': 'gbm',
      },
      'metrics.json': { auc: 0.85 },
    };
    const rows = diffFlat(a, b, false);
    expect(rows.map((r) => `${r.path}:${r.key}`)).toEqual(['metrics.json:auc', 'params.yaml:train.lr', 'params.yaml:train.model']);
    expect(rows[0]!.change).toBeCloseTo(0.05);
    expect(rows[1]).toEqual({
      path: 'params.yaml',
      key: 'train.lr',
      old: 0.1,
      new: 0.05,
      change: -0.05,
    });
    // Not both numbers: no change column.
    expect(rows[2]).toEqual({
      path: 'params.yaml',
      key: 'train.model',
      old: 'lr',
      new: 'gbm',
    });
  });

  it('with all, keeps unchanged keys too', () => {
    const rows = diffFlat(a, a, true);
    expect(rows).toHaveLength(4);
    expect(rows.every((r) => r.change === 0 || r.change === undefined)).toBe(true);
    expect(diffFlat(a, a, false)).toEqual([]);
  });

  it('a key or a file on one side only is a change', () => {
    const rows = diffFlat({ 'p.yaml': { x: 1 } }, { 'p.yaml': { y: 2 }, 'q.yaml': { z: true } }, false);
    expect(rows).toEqual([
      { path: 'p.yaml', key: 'x', old: 1, new: undefined },
      { path: 'p.yaml', key: 'y', old: undefined, new: 2 },
      { path: 'q.yaml', key: 'z', old: undefined, new: true },
    ]);
  });

  it('null on one side and absent on the other is still a change', () => {
    expect(diffFlat({ f: { k: null } }, { f: {} }, false)).toEqual([{ path: 'f', key: 'k', old: null, new: undefined }]);
    expect(diffFlat({ f: { k: null } }, { f: { k: null } }, false)).toEqual([]);
  });

  it('compares structured values by content, not key order', () => {
    expect(diffFlat({ f: { k: { a: 1, b: [1, 2] } } }, { f: { k: { b: [1, 2], a: 1 } } }, false)).toEqual([]);
    expect(diffFlat({ f: { k: [1, 2] } }, { f: { k: [2, 1] } }, false)).toHaveLength(1);
  });
});
