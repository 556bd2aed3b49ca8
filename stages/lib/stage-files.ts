import fs from 'node:fs';
import path from 'node:path';

/**
 * How the stages write their outputs. No temp-file-and-rename here, on purpose:
 * the engine removes a stage's outputs before running it and records them only
 * after the stage succeeded, so a file torn by a crash is never taken for a
 * result (ingest's persisted download is checked by its md5 before reuse). And
 * a stage that imported the engine's writeFileAtomic (runner/api.ts) would
 * have the engine's modules in its import closure, so in its fingerprint: every
 * engine change would rerun the pipeline. Files outside the pipeline (registry,
 * runs, reports), which other processes read while they change, use the
 * engine's writeFileAtomic instead.
 */
export function writeOutput(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
}

/** JSON with a stable layout (2-space indent, trailing newline) so equal data gives equal bytes. */
export function toStableJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

export function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}
