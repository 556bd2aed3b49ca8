import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { LOCKSTEP, REPO, type Row } from './util.js';
import { applyAssignment } from '../runner/exp/params-writer.js';

export const SHARED_RAW = path.resolve(REPO, '..', 'shared', 'data', 'raw_data.csv');

/**
 * The cold full run of the lead pipeline on the real data, in a fresh copy of
 * the repository (no lock, no outputs, no cache), with the time per stage.
 */
export async function benchPipeline(): Promise<Row[]> {
  if (!fs.existsSync(SHARED_RAW)) return [{ name: 'lead pipeline: skipped (../shared/data/raw_data.csv absent)', value: 0, unit: '' }];
  const runs: { total: number; stages: Record<string, number> }[] = [];
  for (let i = 0; i < 3; i++) {
    const dir = copyRepo();
    try {
      setSource(dir);
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [LOCKSTEP, 'repro', '--json'], { cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20 });
      const total = performance.now() - t0;
      if (r.status !== 0) throw new Error(`lead pipeline failed:\n${r.stdout}\n${r.stderr}`);
      const doc = JSON.parse(r.stdout) as { stages: { name: string; durationMs?: number }[] };
      runs.push({ total, stages: Object.fromEntries(doc.stages.map((s) => [s.name, s.durationMs ?? 0])) });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  runs.sort((a, b) => a.total - b.total);
  const med = runs[1]!;
  return [
    { name: 'lead pipeline, cold full run on the real data (wall, median of 3)', value: med.total, unit: 'ms', target: '< 30 s', ok: med.total < 30_000 },
    ...Object.entries(med.stages).map(([name, ms]) => ({ name: `  stage ${name}`, value: ms, unit: 'ms' })),
  ];
}

/** The repository's tracked files plus node_modules (linked): what a fresh clone after `npm ci` has. */
export function copyRepo(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-pipeline-'));
  const files = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO, encoding: 'utf8' })
    .stdout.split('\0')
    .filter(Boolean);
  for (const f of files) {
    if (f === 'pipeline.lock' || !fs.existsSync(path.join(REPO, f))) continue;
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.copyFileSync(path.join(REPO, f), path.join(dir, f));
  }
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

/** Point ingest at the local copy of the data (the default is its public URL). */
export function setSource(dir: string): void {
  applyAssignment(dir, { 'params.yaml': { 'ingest.source': SHARED_RAW } });
}
