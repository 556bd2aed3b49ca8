import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { moduleSources } from '../../runner/module-build.js';
import { REPO, tempDir } from './fixtures.js';

/**
 * What each lead stage's fingerprint is made of: its import closure, as the
 * engine computes it. Stage code must not import the engine (runner/api.ts
 * pulls in some thirty engine files), or every engine change would rerun the
 * whole pipeline; and each stage reaches only the lib folders it needs.
 */
describe('the lead stages’ own code', () => {
  const stages = (YAML.parse(fs.readFileSync(path.join(REPO, 'pipeline.yaml'), 'utf8')) as { stages: Record<string, { module: string }> }).stages;
  const closures = async (): Promise<Record<string, string[]>> => {
    const stateDir = tempDir('stage-code-');
    try {
      const out: Record<string, string[]> = {};
      for (const [name, s] of Object.entries(stages)) out[name] = await moduleSources(REPO, stateDir, s.module);
      return out;
    } finally {
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  };

  it('holds no engine file, and each stage only the lib folders it uses', async () => {
    const c = await closures();
    expect(Object.keys(c)).toEqual(['ingest', 'clean', 'split', 'train', 'select']);
    for (const [name, files] of Object.entries(c)) {
      expect(
        files.filter((f) => !f.startsWith('stages/')),
        name,
      ).toEqual([]);
      expect(files, name).toContain(stages[name]!.module);
    }
    const folders = (name: string) => [...new Set(c[name]!.map((f) => f.split('/').slice(0, 3).join('/')).filter((f) => !f.endsWith('.ts')))].sort();
    expect(folders('ingest')).toEqual(['stages/lib/data']);
    expect(folders('clean')).toEqual(['stages/lib/data']);
    expect(folders('split')).toEqual(['stages/lib/data']);
    expect(folders('train')).toEqual(['stages/lib/data', 'stages/lib/models', 'stages/lib/registry']);
    expect(folders('select')).toEqual(['stages/lib/models']);
    // The registry itself, drift and prediction are leads' business, not a stage's.
    expect(c.train!.filter((f) => f.startsWith('stages/lib/registry/'))).toEqual(['stages/lib/registry/run-record.ts']);
  });
});
