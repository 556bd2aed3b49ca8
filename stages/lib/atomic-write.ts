import fs from 'node:fs';
import path from 'node:path';

/**
 * Write a file so that readers see either the old or the new content, never a
 * torn one: write a sibling temp file, fsync it, then rename over the target
 * (rename is atomic within one filesystem).
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fd = fs.openSync(tmp, 'w');
  try {
    if (typeof data === 'string') fs.writeSync(fd, data);
    else fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/** JSON with a stable layout (2-space indent, trailing newline) so equal data gives equal bytes. */
export function toStableJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, toStableJson(value));
}

export function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}
