import { describe, expect, it } from 'vitest';
import { OutputIndex } from '../../runner/graph.js';
import { isWithin } from '../../runner/paths.js';

/** The index must answer exactly what comparing with every output answered (isWithin either way), in the same order. */
describe('OutputIndex', () => {
  const paths = ['a', 'a/b', 'a/b/c', 'ab', 'a/bc', 'b/a', 'x/y/z', 'a/b/c/d', 'x', 'x/y', 'a', 'data/raw', 'data/raw.csv', 'data', '.', 'b'];

  it('finds the same overlapping outputs as a scan of all of them, in the order added', () => {
    // Several orders, so that holders come both before and after what they hold.
    for (const order of [paths, [...paths].reverse(), [...paths].sort()]) {
      const index = new OutputIndex();
      order.forEach((p, i) => index.add({ path: p, stage: `s${i}` }));
      for (const q of [...paths, 'a/b/c/d/e', 'zz', 'x/y/z/w', 'dat', 'data/raw/part-0']) {
        const scan = index.all.filter((x) => isWithin(x.path, q) || isWithin(q, x.path));
        expect(index.overlapping(q), q).toEqual(scan);
      }
    }
  });

  it('an output never overlaps a sibling whose name merely starts the same', () => {
    const index = new OutputIndex();
    index.add({ path: 'data/raw', stage: 'a' });
    expect(index.overlapping('data/raw.csv')).toEqual([]);
    expect(index.overlapping('data/ra')).toEqual([]);
    expect(index.overlapping('data').map((x) => x.stage)).toEqual(['a']);
    expect(index.overlapping('data/raw/x.csv').map((x) => x.stage)).toEqual(['a']);
  });
});
