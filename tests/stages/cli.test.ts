import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { md5OfFile } from '../../stages/lib/data/checksum.js';
import { formatCsv } from '../../stages/lib/data/csv.js';
import { FEATURE_COLUMNS, RAW_COLUMNS } from '../../stages/lib/data/schema.js';
import { rawCsv, REPO, repoParams, syntheticRaw, tempDir } from './fixtures.js';
import { quickTrainParams, runPipeline } from './pipeline-run.js';

const LEADS = path.join(REPO, 'bin', 'leads.js');
const LOCKSTEP = path.join(REPO, 'bin', 'lockstep.js');
let root: string;

/** The bin runs the tsc output; rebuild it when any stage source is newer. */
function ensureBuilt(): void {
  const built = path.join(REPO, 'dist/stages/cli/leads.js');
  const newest = fs
    .readdirSync(path.join(REPO, 'stages'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .reduce((m, e) => Math.max(m, fs.statSync(path.join(e.parentPath, e.name)).mtimeMs), 0);
  if (!fs.existsSync(built) || fs.statSync(built).mtimeMs < newest) {
    execFileSync(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: REPO, stdio: 'pipe' });
  }
}

function leads(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [LEADS, ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const NO_STACK = /^\s+at .+:\d+/m;

beforeAll(async () => {
  ensureBuilt();
  root = tempDir('leads-cli-');
  fs.writeFileSync(path.join(root, 'source.csv'), rawCsv(syntheticRaw(700, 9)));
  await runPipeline(root, { ...quickTrainParams(repoParams()), ingest: { source: 'source.csv', md5: md5OfFile(path.join(root, 'source.csv')) } });
}, 120_000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('leads CLI', () => {
  it('lists and shows runs', () => {
    const list = leads('runs', 'list', '--json');
    expect(list.code).toBe(0);
    const runs = JSON.parse(list.stdout) as { id: string; model: string }[];
    expect(runs.length).toBe(3);
    const show = leads('runs', 'show', runs[0]!.id);
    expect(JSON.parse(show.stdout)).toMatchObject({ id: runs[0]!.id, model: runs[0]!.model });
    expect(leads('runs').stdout).toMatch(/^ID\s+MODEL\s+TEST ACC/);
    const bad = leads('runs', 'show', 'nope');
    expect([bad.code, bad.stderr.trim()]).toEqual([1, "leads: error: no run 'nope' (see: leads runs list)"]);
  });

  it('lists, shows and promotes registry versions; promote only from Staging', () => {
    expect(leads('registry').stdout).toMatch(/^VERSION\s+STAGE.*\n1\s+Staging/);
    expect(JSON.parse(leads('registry', 'show', '1').stdout)).toMatchObject({ version: 1, stage: 'Staging' });
    const p = leads('registry', 'promote', '1', '--to', 'Production');
    expect([p.code, p.stdout.trim()]).toEqual([0, expect.stringMatching(/^version 1 \(.*\) is now in Production$/)]);
    const again = leads('registry', 'promote', '1', '--to', 'Production');
    expect([again.code, again.stderr.trim()]).toEqual([1, 'leads: error: version 1 is in Production; only a Staging version can move to Production']);
    expect(leads('registry', 'show', '7').stderr).toMatch(/^leads: error: no model version 7 in the registry/);
    expect(leads('registry', 'promote', 'x', '--to', 'Production').code).toBe(2);
  });

  it('predicts raw rows and feature rows to CSV', () => {
    const raw = path.join(root, 'in.csv');
    const lines = fs.readFileSync(path.join(root, 'data/raw/raw_data.csv'), 'utf8').split('\n');
    fs.writeFileSync(
      raw,
      [
        lines[0],
        ...lines
          .slice(1)
          .filter((l) => l.includes(',signup,'))
          .slice(0, 5),
      ].join('\n'),
    );
    const r = leads('predict', '--input', raw, '--stage', 'Production');
    expect(r.code).toBe(0);
    const out = r.stdout.trim().split('\n');
    expect(out[0]).toBe([...RAW_COLUMNS, 'prediction', 'probability'].join(','));
    expect(out.length).toBe(6);
    const feats = path.join(root, 'feats.csv');
    fs.writeFileSync(feats, formatCsv(FEATURE_COLUMNS, [Object.fromEntries(FEATURE_COLUMNS.map((c) => [c, 0.5]))]));
    const outFile = path.join(root, 'pred.csv');
    const f = leads('predict', '--input', feats, '--features', '--version', '1', '--output', outFile);
    expect(f.code).toBe(0);
    expect(fs.readFileSync(outFile, 'utf8')).toMatch(/,prediction,probability\n(0\.5,){12}[01],0\.\d+/);
  });

  it('clear one-line errors, no stack traces, non-zero exits', () => {
    const feats = path.join(root, 'bad.csv');
    fs.writeFileSync(feats, 'purchases,time_spent,colour\n1,2,red\nx,2,blue\n');
    const cases: [string[], number, RegExp][] = [
      [['predict'], 2, /^leads: error: required option '-i, --input <file>' not specified$/m],
      [['predict', '--input', 'missing.csv'], 1, /^leads: error: cannot read missing\.csv: no such file$/m],
      [['predict', '--input', feats, '--bogus'], 2, /^leads: error: unknown option '--bogus'$/m],
      [['predict', '--input', feats, '--version', 'two'], 2, /^leads: error: --version must be a whole number of at least 1, got 'two'$/m],
      [['predict', '--input', feats, '--stage', 'Prod'], 2, /^leads: error: --stage: unknown stage 'Prod' \(one of None, Staging, Production, Archived\)$/m],
      [['registry', 'promote', '1', '--to', 'Live'], 2, /^leads: error: unknown stage 'Live'/m],
      [['predict', '--input', feats, '--stage', 'Staging'], 1, /^leads: error: no model version in Staging/m],
      [['predict', '--input', feats, '--version', '1', '--stage', 'Production'], 2, /give one of --version, --stage and --workspace/],
      [
        ['predict', '--input', feats, '--stage', 'Production'],
        1,
        /row 1: unknown column colour; missing columns n_visits, customer_group, onboarding, source\n.*row 2: unknown column colour/,
      ],
      [['predict', '--input', feats, '--features', '--stage', 'Production'], 1, /row 1: unknown column colour; missing columns n_visits, customer_group_2/],
      [['frobnicate'], 2, /^leads: error: unknown command 'frobnicate'$/m],
    ];
    // The workspace's model (the default) without the pipeline's outputs says how to get them.
    const selected = path.join(root, 'data/metrics/selected.json');
    const saved = fs.readFileSync(selected);
    fs.rmSync(selected);
    try {
      for (const r of [leads('predict', '--input', feats, '--workspace'), leads('predict', '--input', feats)]) {
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(
          /^leads: error: the workspace has no selected model yet: run the pipeline first \(lockstep repro\), or pull its outputs \(lockstep pull\)$/m,
        );
      }
    } finally {
      fs.writeFileSync(selected, saved);
    }
    for (const [args, code, pattern] of cases) {
      const r = leads(...args);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr, args.join(' ')).toMatch(pattern);
      expect(r.stderr, args.join(' ')).not.toMatch(NO_STACK);
    }
    const bad = leads('predict', '--input', feats, '--stage', 'Production');
    expect(bad.stderr).toMatch(/leads: error: 2 of 2 rows cannot be predicted; nothing written/);
  });

  it('--skip-invalid predicts the good rows and names each bad one (row, field, reason); without it nothing is written', () => {
    const lines = fs.readFileSync(path.join(root, 'data/raw/raw_data.csv'), 'utf8').split('\n');
    const header = lines[0]!.split(',');
    const signups = lines
      .slice(1)
      .filter((l) => l.includes(',signup,'))
      .slice(0, 3);
    const broken = signups[1]!.split(',');
    broken[header.indexOf('n_visits')] = 'ten';
    const input = path.join(root, 'mixed.csv');
    fs.writeFileSync(input, [lines[0], signups[0], broken.join(','), signups[2]].join('\n') + '\n');
    const out = path.join(root, 'mixed-pred.csv');
    const strict = leads('predict', '--input', input, '--output', out);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(/^.*mixed\.csv: row 2: n_visits must be a number, got "ten"$/m);
    expect(fs.existsSync(out)).toBe(false);
    const lenient = leads('predict', '--input', input, '--output', out, '--skip-invalid');
    expect(lenient.code, lenient.stderr).toBe(0);
    expect(lenient.stderr).toMatch(/^.*mixed\.csv: row 2: n_visits must be a number, got "ten"$/m);
    expect(lenient.stderr).toMatch(/^2 predictions by version \d+ \(\w+, \w+, the workspace's model\) written to .*mixed-pred\.csv; 1 invalid rows left out$/m);
    const written = fs.readFileSync(out, 'utf8').trim().split('\n');
    expect(written.length).toBe(3);
    expect(written.slice(1).map((l) => l.split(',')[header.indexOf('lead_id')])).toEqual(
      [signups[0], signups[2]].map((l) => l!.split(',')[header.indexOf('lead_id')]),
    );
  });
});

describe('the pipeline under the engine', () => {
  it('a second repro runs nothing; train params rerun train and select; the split seed reruns split, train and select', () => {
    if (!fs.existsSync(path.join(REPO, 'dist/bundle/cli.cjs'))) throw new Error('build the engine first: npm run build');
    const dir = tempDir('leads-engine-');
    try {
      fs.cpSync(path.join(REPO, 'stages'), path.join(dir, 'stages'), { recursive: true });
      fs.copyFileSync(path.join(REPO, 'pipeline.yaml'), path.join(dir, 'pipeline.yaml'));
      fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
      fs.writeFileSync(path.join(dir, 'source.csv'), rawCsv(syntheticRaw(700, 4)));
      const params = { ...quickTrainParams(repoParams()), ingest: { source: 'source.csv', md5: md5OfFile(path.join(dir, 'source.csv')), timeout_s: 5 } };
      const writeParams = (p: object): void => fs.writeFileSync(path.join(dir, 'params.yaml'), YAML.stringify(p));
      const repro = (): string[] => {
        const r = spawnSync(process.execPath, [LOCKSTEP, 'repro'], { cwd: dir, encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`repro failed:\n${r.stdout}\n${r.stderr}`);
        return [...r.stdout.matchAll(/▶ (\w+): running/g)].map((m) => m[1]!);
      };
      const status = (): string => spawnSync(process.execPath, [LOCKSTEP, 'status'], { cwd: dir, encoding: 'utf8' }).stdout;
      writeParams(params);
      expect(status()).toMatch(/ingest:\n\s+never run/);
      expect(repro()).toEqual(['ingest', 'clean', 'split', 'train', 'select']);
      expect(status()).toContain('Pipeline is up to date.');
      expect(repro()).toEqual([]);
      writeParams({ ...params, train: { ...(params.train as object), cv: 4 } });
      expect(status()).toMatch(/^train:\n\s+param changed: train\.cv: 3 -> 4 \(params\.yaml\)\nselect:\n\s+upstream stale: train\n$/);
      expect(repro()).toEqual(['train', 'select']);
      writeParams({ ...params, train: { ...(params.train as object), cv: 4 }, split: { ...(params.split as object), seed: 7 } });
      expect(status()).toMatch(
        /^split:\n\s+param changed: split\.seed: 42 -> 7 \(params\.yaml\)\ntrain:\n\s+upstream stale: split\nselect:\n\s+upstream stale: split\n\s+upstream stale: train\n$/,
      );
      expect(repro()).toEqual(['split', 'train', 'select']);
      // The md5 is the data's identity: the same data from another source (here an unreachable URL) reruns
      // ingest alone, which finds the data already there and fetches nothing; everything downstream stays.
      const sameData = { ...params, train: { ...(params.train as object), cv: 4 }, split: { ...(params.split as object), seed: 7 } };
      writeParams({ ...sameData, ingest: { ...params.ingest, source: 'http://127.0.0.1:9/raw_data.csv' } });
      expect(repro()).toEqual(['ingest']);
      expect(status()).toContain('Pipeline is up to date.');
      // Back to a split seed seen before: split, train and select are restored from the run-cache, not rerun.
      writeParams({ ...sameData, split: params.split, ingest: { ...params.ingest, source: 'http://127.0.0.1:9/raw_data.csv' } });
      const back = spawnSync(process.execPath, [LOCKSTEP, 'repro'], { cwd: dir, encoding: 'utf8' });
      expect(back.status).toBe(0);
      expect(back.stdout).not.toMatch(/▶/);
      expect([...back.stdout.matchAll(/↺ (\w+): restored from run-cache/g)].map((m) => m[1])).toEqual(['split', 'train', 'select']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
