import { describe, expect, it } from 'vitest';
import { assertSpecFeatures, featureVector, fitFeatureSchema, type EncodableRow, type Label } from '../../stages/lib/data/features.js';
import { stratifiedKFold, stratifiedSplit } from '../../stages/lib/data/split.js';
import { FEATURE_COLUMNS } from '../../stages/lib/data/schema.js';

const row = (group: string, onboarding: string, source = 'signup'): EncodableRow => ({
  purchases: 0.5,
  time_spent: 0.25,
  n_visits: 1,
  customer_group: group,
  onboarding,
  source,
  bin_source: source === 'signup' ? 'group1' : 'socials',
});

describe('features', () => {
  it('one-hot encodes with the first sorted category dropped; a single category yields nothing', () => {
    const rows = ['3', '1', '2', '10'].map((g, i) => row(g, i % 2 ? 'True' : 'False'));
    const schema = fitFeatureSchema(rows);
    expect(schema.columns).toEqual(['purchases', 'time_spent', 'n_visits', 'customer_group_2', 'customer_group_3', 'customer_group_10', 'onboarding_True']);
    expect(featureVector(row('10', 'True'), schema)).toEqual([0.5, 0.25, 1, 0, 0, 1, 1]);
    expect(featureVector(row('1', 'False'), schema)).toEqual([0.5, 0.25, 1, 0, 0, 0, 0]);
    expect(() => featureVector(row('7', 'True'), schema)).toThrow(/customer_group '7' was not seen in training/);
  });

  it('gives exactly the spec’s 12 columns for groups 1..9 and signups only', () => {
    const rows = Array.from({ length: 18 }, (_, i) => row(String((i % 9) + 1), i % 2 ? 'True' : 'False'));
    const schema = fitFeatureSchema(rows);
    expect(schema.columns).toEqual([...FEATURE_COLUMNS]);
    expect(() => assertSpecFeatures(schema)).not.toThrow();
    expect(() => assertSpecFeatures(fitFeatureSchema([...rows, row('1', 'True', 'li')]))).toThrow(/not the spec's 12 columns/);
  });
});

describe('stratified split', () => {
  const y: Label[] = Array.from({ length: 200 }, (_, i) => (i % 5 < 2 ? 1 : 0));

  it('keeps the class ratio, covers every row once and depends only on the seed', () => {
    const s = stratifiedSplit(y, 0.15, 42);
    expect(s.test.length).toBe(30);
    expect(s.test.filter((i) => y[i] === 1).length).toBe(12);
    expect([...s.train, ...s.test].sort((a, b) => a - b)).toEqual(y.map((_, i) => i));
    expect(stratifiedSplit(y, 0.15, 42)).toEqual(s);
    expect(stratifiedSplit(y, 0.15, 43).test).not.toEqual(s.test);
  });

  it('k-fold: disjoint test folds covering all rows, each stratified', () => {
    const folds = stratifiedKFold(y, 5, 1);
    expect(folds.flatMap((f) => f.test).sort((a, b) => a - b)).toEqual(y.map((_, i) => i));
    for (const f of folds) {
      expect(f.test.length).toBe(40);
      expect(f.test.filter((i) => y[i] === 1).length).toBe(16);
      expect(f.train.length + f.test.length).toBe(200);
    }
    expect(() => stratifiedKFold([0, 1, 1], 2, 1)).toThrow(/cannot make 2 stratified folds/);
  });
});
