import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { freshClone, REPO, SHARED_DATA, LOCKSTEP } from '../helpers.js';

const LEADS = path.join(REPO, 'bin', 'leads.js');
const RAW = path.join(SHARED_DATA, 'raw_data.csv');
const VALIDATOR = path.join(SHARED_DATA, 'validator');

/** A fresh clone with the CI's remote configured. */
function cloneRepo(remoteDir: string): string {
  const dir = freshClone('lockstep-ci-');
  // What CI does without internet: point ingest at the local copy (same md5, so nothing downstream changes).
  const params = fs.readFileSync(path.join(dir, 'params.yaml'), 'utf8').replace(/^ {2}source: .*$/m, `  source: ${RAW}`);
  fs.writeFileSync(path.join(dir, 'params.yaml'), params);
  fs.mkdirSync(path.join(dir, '.lockstep'), { recursive: true });
  fs.writeFileSync(path.join(dir, '.lockstep', 'config.local'), `remotes:\n  ci:\n    url: ${remoteDir}\ndefault: ci\n`);
  return dir;
}

function run(bin: string, cwd: string, args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('the CI recipe on the real pipeline', () => {
  it('the workflow restores the cache, pulls, reproduces, pushes, validates and uploads the model', () => {
    const wf = YAML.parse(fs.readFileSync(path.join(REPO, '.github/workflows/pipeline.yml'), 'utf8'));
    const steps = wf.jobs.repro.steps as { uses?: string; run?: string; with?: Record<string, string> }[];
    expect(steps.find((s) => s.uses?.startsWith('actions/cache'))?.with?.path).toBe('.lockstep/cache');
    expect(steps.some((s) => s.run?.includes('lockstep repro') && s.run.includes('--pull'))).toBe(true);
    expect(steps.some((s) => s.run?.includes('lockstep push'))).toBe(true);
    expect(steps.some((s) => s.run?.includes('leads predict --workspace --features') && s.run.includes('check-predictions.mjs'))).toBe(true);
    expect(steps.find((s) => s.uses?.startsWith('actions/upload-artifact'))?.with?.name).toBe('model');
    // The commands run from bin/ on PATH, as the README says: npx would start npm first on every call.
    expect(steps.some((s) => s.run?.includes('$PWD/bin') && s.run.includes('GITHUB_PATH'))).toBe(true);
    expect(steps.filter((s) => s.run?.includes('npx '))).toEqual([]);
  });

  it('build A trains and pushes; build B on a fresh clone pulls, trains nothing, and its model passes the validator', () => {
    if (!fs.existsSync(RAW)) throw new Error(`the real data is needed at ${RAW}`);
    const remote = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-ci-remote-'));
    const a = cloneRepo(remote);
    const b = cloneRepo(remote);
    try {
      const ra = run(LOCKSTEP, a, ['repro', '--pull', '--json']);
      expect(ra.code, ra.stderr).toBe(0);
      // A has the committed lock but no outputs: everything up to train runs; train's outputs come out
      // byte-identical to the committed lock's, so select (whose metrics are committed) is cut off.
      expect(JSON.parse(ra.stdout).stages.map((s: { name: string; state: string }) => `${s.name}:${s.state}`)).toEqual([
        'ingest:done',
        'clean:done',
        'split:done',
        'train:done',
        'select:skipped',
      ]);
      expect(run(LOCKSTEP, a, ['push']).code).toBe(0);

      const rb = run(LOCKSTEP, b, ['repro', '--pull', '--json']);
      expect(rb.code, rb.stderr).toBe(0);
      const states = JSON.parse(rb.stdout).stages.map((s: { state: string }) => s.state);
      expect(states.filter((s: string) => s === 'done')).toEqual([]); // zero stages executed
      for (const f of ['data/models', 'data/features/test.csv', 'data/metrics/selected.json']) {
        const list = (d: string) => (fs.statSync(d).isDirectory() ? fs.readdirSync(d, { recursive: true }).map(String).sort() : ['']);
        for (const rel of list(path.join(a, f))) {
          const fa = path.join(a, f, rel);
          if (fs.statSync(fa).isDirectory()) continue;
          expect(fs.readFileSync(path.join(b, f, rel)).equals(fs.readFileSync(fa)), `${f}/${rel}`).toBe(true);
        }
      }
      // The workflow's validation step, in B: the model B restored, not one B trained.
      const pred = run(LEADS, b, [
        'predict',
        '--workspace',
        '--features',
        '--input',
        path.join(VALIDATOR, 'X_test.csv'),
        '--output',
        path.join(b, 'predictions.csv'),
      ]);
      expect(pred.code, pred.stderr).toBe(0);
      // B restored everything; its registry follows what it restored: the model A trained, as version 1.
      expect(pred.stderr).toMatch(/^leads: registry: the workspace's model \(xgboost_boost\) registered as version 1, in Staging/m);
      expect(pred.stderr).toMatch(/36 predictions by version 1 \(xgboost_boost, Staging, the workspace's model\)/);
      const predA = run(LEADS, a, ['predict', '--features', '--input', path.join(VALIDATOR, 'X_test.csv'), '--output', path.join(a, 'predictions.csv')]);
      expect(predA.code, predA.stderr).toBe(0);
      expect(fs.readFileSync(path.join(b, 'predictions.csv'), 'utf8')).toBe(fs.readFileSync(path.join(a, 'predictions.csv'), 'utf8'));
      const versions = (dir: string) =>
        JSON.parse(run(LEADS, dir, ['registry', 'list', '--json']).stdout) as {
          version: number;
          stage: string;
          objects: Record<string, string>;
          run_id: string;
        }[];
      const [va, vb] = [versions(a), versions(b)];
      expect(vb.map((v) => [v.version, v.stage])).toEqual([[1, 'Staging']]);
      expect(vb[0]!.objects).toEqual(va[0]!.objects);
      // The run that trained it came along with the outputs (a run record is an output), so B knows it too.
      expect(vb[0]!.run_id).toBe(va[0]!.run_id);
      expect(run(LEADS, b, ['runs', 'show', vb[0]!.run_id]).code).toBe(0);
      const check = spawnSync(
        process.execPath,
        [path.join(REPO, 'scripts/check-predictions.mjs'), path.join(b, 'predictions.csv'), path.join(VALIDATOR, 'y_test.csv')],
        { encoding: 'utf8' },
      );
      expect(check.stdout).toMatch(/first five: \[0,1,0,1,0\]/);
      expect(check.status).toBe(0);
    } finally {
      for (const d of [a, b, remote]) fs.rmSync(d, { recursive: true, force: true });
    }
  }, 180_000);
});
