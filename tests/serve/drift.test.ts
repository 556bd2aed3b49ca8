import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { md5OfFile } from '../../stages/lib/data/checksum.js';
import { chiSquarePValue, chiSquareTest, histogram, kolmogorovQ, ksStatistic, ksTest, psi, quantileEdges } from '../../stages/lib/drift/statistics.js';
import { rawCsv, repoParams, syntheticRaw, tempDir } from '../stages/fixtures.js';
import { quickTrainParams, runPipeline } from '../stages/pipeline-run.js';
import { LEADS } from './server.js';

describe('drift statistics', () => {
  it('KS statistic and p-value match known values', () => {
    expect(ksStatistic([1, 2, 3, 4], [3, 4, 5, 6])).toBe(0.5);
    expect(ksStatistic([1, 2, 3], [1, 2, 3])).toBe(0);
    expect(ksStatistic([1, 2], [3, 4])).toBe(1);
    // The Kolmogorov distribution's classic critical values: 1.358 at 5 %, 1.628 at 1 %.
    expect(kolmogorovQ(1.358)).toBeCloseTo(0.05, 3);
    expect(kolmogorovQ(1.628)).toBeCloseTo(0.01, 3);
    expect(kolmogorovQ(0.1)).toBe(1);
    const same = ksTest(
      Array.from({ length: 200 }, (_, i) => i),
      Array.from({ length: 200 }, (_, i) => i + 0.5),
    );
    expect(same.pValue).toBeGreaterThan(0.9);
    const shifted = ksTest(
      Array.from({ length: 200 }, (_, i) => i),
      Array.from({ length: 200 }, (_, i) => i + 100),
    );
    expect(shifted.statistic).toBe(0.5);
    expect(shifted.pValue).toBeLessThan(1e-20);
  });

  it('chi-square p-values match the table (3.841 at 1 df, 5.991 at 2, 11.345 at 3)', () => {
    expect(chiSquarePValue(3.841, 1)).toBeCloseTo(0.05, 3);
    expect(chiSquarePValue(5.991, 2)).toBeCloseTo(0.05, 3);
    expect(chiSquarePValue(11.345, 3)).toBeCloseTo(0.01, 3);
    expect(chiSquarePValue(0, 4)).toBe(1);
    // 2×2 table [[10, 20], [20, 10]]: expected 15 everywhere, statistic 4·25/15.
    const t = chiSquareTest(
      new Map([
        ['a', 10],
        ['b', 20],
      ]),
      new Map([
        ['a', 20],
        ['b', 10],
      ]),
    );
    expect(t.statistic).toBeCloseTo(100 / 15, 10);
    expect(t.df).toBe(1);
    expect(t.pValue).toBeCloseTo(0.00982, 4);
  });

  it('PSI, quantile bins and histograms', () => {
    expect(psi([50, 50], [50, 50])).toBe(0);
    expect(psi([50, 50], [25, 75])).toBeCloseTo(0.25 * Math.log(2) + 0.25 * Math.log(1.5), 12);
    const ref = Array.from({ length: 100 }, (_, i) => i);
    const edges = quantileEdges(ref, 4);
    expect(edges).toEqual([25, 50, 75]);
    expect(histogram(ref, edges)).toEqual([25, 25, 25, 25]);
    expect(quantileEdges([1, 1, 1, 1, 2], 4)).toEqual([1]); // ties merge
  });
});

describe('leads drift', () => {
  let root: string;
  beforeAll(async () => {
    root = tempDir('leads-drift-');
    fs.writeFileSync(path.join(root, 'source.csv'), rawCsv(syntheticRaw(900, 31)));
    await runPipeline(root, { ...quickTrainParams(repoParams()), ingest: { source: 'source.csv', md5: md5OfFile(path.join(root, 'source.csv')) } } as never);
  }, 120_000);
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  const drift = (...args: string[]) => spawnSync(process.execPath, [LEADS, 'drift', ...args], { cwd: root, encoding: 'utf8' });

  it('a batch drawn like the training data shows no drift (exit 0) and writes JSON and HTML reports', () => {
    fs.writeFileSync(path.join(root, 'same.csv'), rawCsv(syntheticRaw(900, 77)));
    const r = drift('--input', 'same.csv', '--output-dir', 'out-same');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/passed: 0 of 5 features drifted/);
    const report = JSON.parse(fs.readFileSync(path.join(root, 'out-same/report.json'), 'utf8'));
    expect(report.drifted).toEqual([]);
    expect(report.features.map((f: { feature: string }) => f.feature)).toEqual(['purchases', 'time_spent', 'n_visits', 'customer_group', 'onboarding']);
    const html = fs.readFileSync(path.join(root, 'out-same/report.html'), 'utf8');
    expect(html).toContain('passed: 0 of 5 features drifted');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    // Rows the model cannot score (not signups) are left out and said so.
    expect(r.stderr).toMatch(/rows of same\.csv left out \(row \d+: source '\w+' cannot be scored/);
  });

  it('a batch with shifted n_visits is flagged, naming the feature, and exits non-zero', () => {
    const shifted = syntheticRaw(900, 77).map((row) => ({ ...row, n_visits: String(Number(row.n_visits) * 2 + 10) }));
    fs.writeFileSync(path.join(root, 'shifted.csv'), rawCsv(shifted));
    const r = drift('--input', 'shifted.csv', '--output-dir', 'out-shifted');
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(/^DRIFT\s+n_visits/m);
    expect(r.stdout).toMatch(/FAILED: 1 of 5 features drifted \(n_visits\)/);
    const report = JSON.parse(fs.readFileSync(path.join(root, 'out-shifted/report.json'), 'utf8'));
    expect(report.drifted).toEqual(['n_visits']);
    expect(report.failed).toBe(true);
    expect(fs.readFileSync(path.join(root, 'out-shifted/report.html'), 'utf8')).toContain('n_visits — drifted');
  });

  it('the threshold comes from params.yaml; bad params, inputs and options are clear errors', () => {
    fs.writeFileSync(path.join(root, 'params.yaml'), 'drift:\n  max_drifted_share: 0.5\n');
    expect(drift('--input', 'shifted.csv', '--output-dir', 'out-lenient').status).toBe(0); // 1 of 5 is under half
    fs.writeFileSync(path.join(root, 'params.yaml'), 'drift:\n  bins: 1\n');
    let r = drift('--input', 'same.csv');
    expect(r.status).toBe(2); // a configuration mistake: bad input, nothing was done
    expect(r.stderr).toMatch(/^leads: error: params\.yaml: drift\.bins must be a whole number of at least 2, got 1$/m);
    // params.yaml is read as the engine reads it: a syntax error is named with its line and column.
    fs.writeFileSync(path.join(root, 'params.yaml'), 'drift:\n  bins: [1\n');
    r = drift('--input', 'same.csv');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^leads: params\.yaml:\d+:\d+: error: /m);
    fs.writeFileSync(path.join(root, 'params.yaml'), 'drift:\n  psi: 0.1\n');
    expect(drift('--input', 'same.csv').stderr).toMatch(/unknown key drift\.psi \(known: psi_threshold, p_value, max_drifted_share, bins\)/);
    fs.rmSync(path.join(root, 'params.yaml'));
    r = drift();
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^leads: error: required option '-i, --input <file>' not specified$/m);
    r = drift('--input', 'nope.csv');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot read input .*nope\.csv: no such file/);
    fs.writeFileSync(path.join(root, 'junk.csv'), 'a,b\n1,2\n');
    r = drift('--input', 'junk.csv');
    expect(r.stderr).toMatch(/no row of junk\.csv could be read: row 1: unknown columns a, b/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
