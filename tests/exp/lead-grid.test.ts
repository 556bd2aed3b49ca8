import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { LOCKSTEP, REPO } from '../helpers.js';
import { md5OfFile } from '../../stages/lib/data/checksum.js';
import { rawCsv, repoParams, syntheticRaw } from '../stages/fixtures.js';
import { quickTrainParams } from '../stages/pipeline-run.js';

/** The lead pipeline as shipped (stage modules, pipeline.yaml), on synthetic data with a small search. */
let dir: string;

function cli(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [LOCKSTEP, ...args], { cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Every file under the workspace (outside .lockstep) with its bytes, to prove nothing was touched. */
function snapshot(): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name === '.lockstep' || e.name === 'node_modules' || e.name === 'stages') continue;
      const p = path.join(d, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p, r);
      else out.set(r, fs.readFileSync(p).toString('base64'));
    }
  };
  walk(dir, '');
  return out;
}

const cached = (hash: string) => fs.readFileSync(path.join(dir, '.lockstep/cache/files/xxh64', hash.slice(0, 2), hash.slice(2)));

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-lead-grid-'));
  fs.cpSync(path.join(REPO, 'stages'), path.join(dir, 'stages'), { recursive: true });
  fs.copyFileSync(path.join(REPO, 'pipeline.yaml'), path.join(dir, 'pipeline.yaml'));
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  fs.writeFileSync(path.join(dir, 'source.csv'), rawCsv(syntheticRaw(700, 11)));
  const params = { ...quickTrainParams(repoParams()), ingest: { source: 'source.csv', md5: md5OfFile(path.join(dir, 'source.csv')), timeout_s: 5 } };
  fs.writeFileSync(path.join(dir, 'params.yaml'), YAML.stringify(params));
  const r = cli(['repro']);
  if (r.code !== 0) throw new Error(r.stdout + r.stderr);
}, 120_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('experiments on the lead pipeline', () => {
  it('a grid of 6 run with -j 2 leaves the workspace untouched and records each with its own metrics; exp apply restores one byte-identically without rerunning', () => {
    const before = snapshot();
    expect(cli(['exp', 'run', '-S', 'split.seed=1,2,3', '-S', 'train.cv=2,3', '--queue']).code).toBe(0);
    const run = cli(['exp', 'run', '--run-all', '-j', '2']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(snapshot()).toEqual(before);

    const shown = JSON.parse(cli(['exp', 'show', '--json']).stdout) as {
      experiments: { name: string; status: string; params: Record<string, unknown>; metrics: Record<string, unknown> }[];
    };
    const exps = shown.experiments;
    expect(exps).toHaveLength(6);
    expect(exps.every((e) => e.status === 'success')).toBe(true);
    const combos = exps.map((e) => `${e.params['split.seed']}/${e.params['train.cv']}`).sort();
    expect(combos).toEqual(['1/2', '1/3', '2/2', '2/3', '3/2', '3/3']);

    const store = path.join(dir, '.lockstep/exps');
    const records = fs
      .readdirSync(store)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(fs.readFileSync(path.join(store, f), 'utf8')));
    const selectedScores = new Set<number>();
    for (const rec of records) {
      // The recorded metrics are exactly the files the experiment's select stage produced (kept in the cache).
      const out = rec.lock.select.outs.find((o: { path: string }) => o.path === 'data/metrics/selected.json');
      const produced = JSON.parse(cached(out.hash).toString('utf8'));
      expect(rec.metrics['data/metrics/selected.json']['test.f1_weighted']).toBe(produced.test.f1_weighted);
      expect(rec.metricsText['data/metrics/selected.json']).toBe(cached(out.hash).toString('utf8'));
      selectedScores.add(produced.test.f1_weighted);
    }
    expect(selectedScores.size).toBeGreaterThan(1); // different seeds, different results

    // Queued experiments record their training runs too: leads files them from the experiments' cached outputs.
    const leads = spawnSync(process.execPath, [path.join(REPO, 'bin', 'leads.js'), 'runs', 'list', '--json'], { cwd: dir, encoding: 'utf8' });
    expect(leads.status, leads.stderr).toBe(0);
    const runs = JSON.parse(leads.stdout) as { id: string; model: string; artifacts: Record<string, { path: string; hash: string }> }[];
    for (const rec of records) {
      const runsOut = rec.lock.train.outs.find((o: { path: string }) => o.path === 'data/runs');
      const ids = (JSON.parse(cached(runsOut.hash).toString('utf8')) as { hash: string }[]).map(
        (f) => JSON.parse(cached(f.hash).toString('utf8')).id as string,
      );
      expect(ids).toHaveLength(3);
      for (const id of ids)
        expect(
          runs.map((r) => r.id),
          rec.name,
        ).toContain(id);
    }
    // A run's model can be fetched from the cache by the hash its record names.
    for (const r of runs) expect(cached(r.artifacts.model!.hash).length).toBeGreaterThan(100);

    const pick = records.find((r) => r.params['params.yaml']['split.seed'] === 2 && r.params['params.yaml']['train.cv'] === 3);
    const apply = cli(['exp', 'apply', pick.name]);
    expect(apply.code, apply.stderr).toBe(0);
    expect(YAML.parse(fs.readFileSync(path.join(dir, 'params.yaml'), 'utf8')).split.seed).toBe(2);
    const models = pick.lock.train.outs.find((o: { path: string }) => o.path === 'data/models');
    const manifest = JSON.parse(cached(models.hash).toString('utf8')) as { relpath: string; hash: string }[];
    for (const m of manifest) expect(fs.readFileSync(path.join(dir, 'data/models', m.relpath)).equals(cached(m.hash))).toBe(true);
    // Nothing needs to run: the workspace is exactly that experiment.
    const status = cli(['status']);
    expect(status.stdout).toContain('Pipeline is up to date.');
    const again = cli(['repro', '--json']);
    expect(JSON.parse(again.stdout).stages.every((s: { state: string }) => s.state === 'skipped')).toBe(true);
  }, 240_000);
});
