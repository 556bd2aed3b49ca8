import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cleanRows, clipBound, modeOf } from '../../stages/lib/data/clean.js';
import { parseCsv, readCsv } from '../../stages/lib/data/csv.js';
import { CLEAN_COLUMNS } from '../../stages/lib/data/schema.js';
import { HAS_REAL_DATA, RAW_REAL, rawCsv, syntheticRaw } from './fixtures.js';

const JAN = { minDate: '2024-01-01', maxDate: '2024-01-31' };

function row(over: Record<string, string>): Record<string, string> {
  return {
    lead_id: '1',
    lead_indicator: '1',
    date_part: '2024-01-5',
    source: 'signup',
    purchases: '5',
    time_spent: '100',
    n_visits: '3',
    customer_group: '2',
    onboarding: 'True',
    customer_code: 'X',
    ...over,
  };
}

describe('clean on synthetic rows', () => {
  const raw = parseCsv(rawCsv(syntheticRaw(400, 7))).rows;
  const { rows, artifacts } = cleanRows(raw, JAN);

  it('keeps labeled January signups only, with padded dates and the notebook column order', () => {
    const expected = raw.filter((r) => r.date_part!.startsWith('2024-01-') && r.lead_indicator !== '' && r.source === 'signup');
    expect(rows.map((r) => r.lead_id)).toEqual(expected.map((r) => r.lead_id));
    expect(rows.every((r) => /^2024-01-\d\d$/.test(r.date_part) && r.source === 'signup' && r.bin_source === 'group1')).toBe(true);
    expect(artifacts.columns).toEqual([...CLEAN_COLUMNS]);
    expect(artifacts.date_limits.min_date <= artifacts.date_limits.max_date).toBe(true);
  });

  it('clips to mean ± 2 std of the kept rows, imputes the clipped mean and scales to [0, 1]', () => {
    const kept = raw.filter((r) => r.date_part!.startsWith('2024-01-') && r.lead_indicator !== '' && r.source === 'signup');
    const present = kept
      .map((r) => r.purchases!)
      .filter((v) => v !== '')
      .map(Number);
    const m = present.reduce((a, b) => a + b, 0) / present.length;
    const sd = Math.sqrt(present.reduce((a, b) => a + (b - m) ** 2, 0) / (present.length - 1));
    expect(artifacts.clip_bounds.purchases.lower).toBeCloseTo(m - 2 * sd, 12);
    expect(artifacts.clip_bounds.purchases.upper).toBeCloseTo(m + 2 * sd, 12);
    const clipped = present.map((v) => Math.min(m + 2 * sd, Math.max(m - 2 * sd, v)));
    const cm = clipped.reduce((a, b) => a + b, 0) / clipped.length;
    expect(artifacts.outlier_summary.purchases.missing).toBe(kept.length - present.length);
    expect(artifacts.outlier_summary.purchases.missing).toBeGreaterThan(0);
    expect(artifacts.imputation.continuous.purchases).toBeCloseTo(cm, 12);
    for (const c of ['purchases', 'time_spent', 'n_visits'] as const) {
      const vs = rows.map((r) => r[c]);
      expect(Math.min(...vs)).toBe(0);
      expect(Math.max(...vs)).toBe(1);
    }
    // An imputed row sits at the scaled clipped mean.
    const gap = kept.findIndex((r) => r.purchases === '');
    const s = artifacts.scaler.purchases;
    expect(rows[gap]!.purchases).toBeCloseTo((cm - s.min) / (s.max - s.min), 12);
  });

  it('turns an empty customer_code into the string None', () => {
    const kept = raw.filter((r) => r.date_part!.startsWith('2024-01-') && r.lead_indicator !== '' && r.source === 'signup');
    const i = kept.findIndex((r) => r.customer_code === '');
    expect(i).toBeGreaterThanOrEqual(0);
    expect(rows[i]!.customer_code).toBe('None');
  });
});

describe('clean edge cases', () => {
  it('computes statistics after the filters, not before', () => {
    const raw = [
      row({ lead_id: '1', purchases: '1' }),
      row({ lead_id: '2', purchases: '3' }),
      row({ lead_id: '3', purchases: '1000', source: 'li' }),
      row({ lead_id: '4', purchases: '1000', lead_indicator: '' }),
      row({ lead_id: '5', purchases: '1000', date_part: '2024-02-1' }),
    ];
    const { artifacts } = cleanRows(raw, JAN);
    expect(artifacts.clip_bounds.purchases.mean).toBe(2);
  });

  it('fills a missing categorical with its mode, ties to the smallest', () => {
    expect(modeOf(['b', 'a', 'b', 'a', 'c'])).toBe('a');
    expect(modeOf(['10', '9', '10', '9'])).toBe('9');
    const { rows } = cleanRows(
      [row({ lead_id: '1', customer_group: '3' }), row({ lead_id: '2', customer_group: '3' }), row({ lead_id: '3', customer_group: '' })],
      JAN,
    );
    expect(rows[2]!.customer_group).toBe('3');
  });

  it('rejects bad values and an empty window with clear messages', () => {
    expect(() => cleanRows([row({ purchases: 'many' }), row({})], JAN)).toThrow(/purchases must be a number, got 'many'/);
    expect(() => cleanRows([row({ date_part: '2024-13-1' })], JAN)).toThrow(/date_part is not a date/);
    expect(() => cleanRows([row({ date_part: '2023-01-1' })], JAN)).toThrow(/no rows between/);
    expect(() => clipBound([1])).toThrow(/cannot compute/);
  });
});

describe.skipIf(!HAS_REAL_DATA)('clean on the real data', () => {
  it('gives 2,937 rows (1,562 zeros, 1,375 ones) and the spec’s clip statistics', () => {
    const { rows, artifacts } = cleanRows(readCsv(RAW_REAL).rows, JAN);
    expect(rows.length).toBe(2937);
    expect(rows.filter((r) => r.lead_indicator === 0).length).toBe(1562);
    expect(rows.filter((r) => r.lead_indicator === 1).length).toBe(1375);
    const b = artifacts.clip_bounds;
    expect(b.purchases.mean).toBeCloseTo(5.03643, 5);
    expect(b.purchases.std).toBeCloseTo(2.22913, 5);
    expect(b.time_spent.mean).toBeCloseTo(99.9924, 4);
    expect(b.time_spent.std).toBeCloseTo(9.955, 5);
    expect(b.n_visits.mean).toBeCloseTo(9.04086, 5);
    expect(b.n_visits.std).toBeCloseTo(6.64672, 5);
    expect(artifacts.date_limits).toEqual({ min_date: '2024-01-01', max_date: '2024-01-31' });
    expect(rows.filter((r) => r.customer_code === 'None').length).toBe(16);
    expect(fs.existsSync(RAW_REAL)).toBe(true);
  });
});
