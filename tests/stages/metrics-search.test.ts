import { describe, expect, it } from 'vitest';
import { classificationMetrics, prCurve, rocAuc, rocCurve } from '../../stages/lib/models/metrics.js';
import { ParamReader } from '../../stages/lib/params.js';
import { parseSearchSpace, sampleCandidates } from '../../stages/lib/models/search-space.js';
import type { Label } from '../../stages/lib/data/features.js';

describe('classification metrics', () => {
  it('match hand-computed binary and weighted scores', () => {
    const y: Label[] = [1, 1, 1, 0, 0, 0, 0, 0];
    const p: Label[] = [1, 1, 0, 1, 0, 0, 0, 0];
    const m = classificationMetrics(y, p);
    expect(m.confusion_matrix).toEqual({ tn: 4, fp: 1, fn: 1, tp: 2 });
    expect(m.accuracy).toBe(0.75);
    expect(m.precision).toBeCloseTo(2 / 3, 12);
    expect(m.recall).toBeCloseTo(2 / 3, 12);
    expect(m.f1).toBeCloseTo(2 / 3, 12);
    // class 0: precision 4/5, recall 4/5, f1 4/5; weights 5/8 and 3/8.
    expect(m.f1_weighted).toBeCloseTo((5 / 8) * 0.8 + (3 / 8) * (2 / 3), 12);
    expect(m.precision_weighted).toBeCloseTo((5 / 8) * 0.8 + (3 / 8) * (2 / 3), 12);
  });

  it('count an undefined ratio as 0', () => {
    const m = classificationMetrics([0, 0, 1], [0, 0, 0]);
    expect(m.precision).toBe(0);
    expect(m.f1).toBe(0);
  });

  it('ROC and PR curves with ties grouped; a perfect ranking has AUC 1', () => {
    const y: Label[] = [0, 1, 0, 1];
    const s = [0.1, 0.8, 0.8, 0.9];
    expect(rocCurve(y, s)).toEqual([
      { fpr: 0, tpr: 0, threshold: null },
      { fpr: 0, tpr: 0.5, threshold: 0.9 },
      { fpr: 0.5, tpr: 1, threshold: 0.8 },
      { fpr: 1, tpr: 1, threshold: 0.1 },
    ]);
    expect(prCurve(y, s)[2]).toEqual({ precision: 2 / 3, recall: 1, threshold: 0.8 });
    expect(rocAuc(rocCurve([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9]))).toBe(1);
    expect(rocAuc(rocCurve(y, s))).toBeCloseTo(0.875, 12);
  });
});

describe('search space', () => {
  const space = parseSearchSpace(
    new ParamReader(
      {
        lr: { uniform: [0.01, 0.31] },
        depth: { randint: [3, 9] },
        obj: ['a', 'b'],
        n: 50,
      },
      'train.models.x.space',
    ),
  );

  it('draws within bounds, deterministically per seed', () => {
    const a = sampleCandidates(space, 50, 1);
    expect(a).toEqual(sampleCandidates(space, 50, 1));
    expect(a).not.toEqual(sampleCandidates(space, 50, 2));
    for (const c of a) {
      expect(c.lr).toBeGreaterThanOrEqual(0.01);
      expect(c.lr).toBeLessThan(0.31);
      expect(Number.isInteger(c.depth) && (c.depth as number) >= 3 && (c.depth as number) <= 9).toBe(true);
      expect(['a', 'b']).toContain(c.obj);
      expect(c.n).toBe(50);
    }
    expect(new Set(a.map((c) => c.depth)).size).toBe(7);
  });

  it('a grid of lists is sampled without replacement, whole when n_iter covers it', () => {
    const grid = parseSearchSpace(new ParamReader({ C: [100, 10, 1, 0.1, 0.01] }, 's'));
    expect(sampleCandidates(grid, 10, 3).map((c) => c.C)).toEqual([100, 10, 1, 0.1, 0.01]);
    const three = sampleCandidates(grid, 3, 3).map((c) => c.C);
    expect(new Set(three).size).toBe(3);
  });

  it('names the bad key', () => {
    expect(() => parseSearchSpace(new ParamReader({ lr: { uniform: [1] } }, 'train.models.x.space'))).toThrow(
      /train\.models\.x\.space\.lr\.uniform must be \[low, high\]/,
    );
    expect(() => parseSearchSpace(new ParamReader({ lr: { normal: [0, 1] } }, 's'))).toThrow(/s\.lr must be a value, a list/);
  });
});
