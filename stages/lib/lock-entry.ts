import fs from 'node:fs';
import YAML from 'yaml';

/**
 * A stage's entry in pipeline.lock (YAML `stages: {name: {...}}`), or null
 * when there is no lock yet or it does not name the stage. The engine writes
 * the lock in batches, so during a run this is the entry as of the last write.
 */
export function readLockEntry(lockFile: string, stage: string): unknown {
  if (!fs.existsSync(lockFile)) return null;
  let doc: unknown;
  try {
    doc = YAML.parse(fs.readFileSync(lockFile, 'utf8'));
  } catch {
    return null;
  }
  const stages = (doc as { stages?: Record<string, unknown> } | null)?.stages;
  return stages && typeof stages === 'object' ? (stages[stage] ?? null) : null;
}
