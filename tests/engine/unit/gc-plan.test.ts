import { describe, expect, it } from 'vitest';
import { planRemoval, type GcInventory } from '../../../runner/cache/gc.js';

// In process: gc's decision as a pure function of what the cache holds and what is still needed.
const obj = (hash: string, size = 10, recent?: boolean) => ({
  hash,
  size,
  ...(recent ? { recent } : {}),
});

describe('planRemoval', () => {
  it('removes exactly the objects nothing keeps, with their sizes, and counts what is kept', () => {
    const inv: GcInventory = {
      objects: [obj('a', 1), obj('b', 2), obj('c', 3)],
      keep: new Set(['b']),
      runEntries: [],
    };
    expect(planRemoval(inv)).toEqual({
      objects: [obj('a', 1), obj('c', 3)],
      runEntries: [],
      kept: 1,
    });
  });

  it('keeps nothing back when everything is needed, and removes nothing from an empty cache', () => {
    expect(
      planRemoval({
        objects: [obj('a'), obj('b')],
        keep: new Set(['a', 'b']),
        runEntries: [],
      }).objects,
    ).toEqual([]);
    expect(planRemoval({ objects: [], keep: new Set(), runEntries: [] })).toEqual({ objects: [], runEntries: [], kept: 0 });
  });

  it('while experiments run, an object that entered the cache recently stays even when nothing names it yet', () => {
    const plan = planRemoval({
      objects: [obj('old'), obj('new', 10, true)],
      keep: new Set(),
      runEntries: [],
    });
    expect(plan.objects.map((o) => o.hash)).toEqual(['old']);
  });

  it('drops a run-cache entry that would name a removed object, but keeps one whose objects all stay', () => {
    const plan = planRemoval({
      objects: [obj('kept'), obj('gone'), obj('fresh', 10, true)],
      keep: new Set(['kept']),
      runEntries: [
        { fingerprint: 'uses-kept', needs: ['kept'] },
        { fingerprint: 'uses-gone', needs: ['kept', 'gone'] },
        { fingerprint: 'uses-fresh', needs: ['fresh'] },
      ],
    });
    expect(plan.runEntries).toEqual(['uses-gone']);
  });

  it('drops a run-cache entry that is unreadable or names an object the cache never had', () => {
    const plan = planRemoval({
      objects: [obj('a')],
      keep: new Set(['a']),
      runEntries: [{ fingerprint: 'unreadable' }, { fingerprint: 'dangling', needs: ['a', 'never-stored'] }, { fingerprint: 'whole', needs: ['a'] }],
    });
    expect(plan.runEntries).toEqual(['unreadable', 'dangling']);
    expect(plan.objects).toEqual([]);
  });
});
