import crypto from 'node:crypto';
import fs from 'node:fs';

export function md5OfBytes(data: Uint8Array): string {
  return crypto.createHash('md5').update(data).digest('hex');
}

export function md5OfFile(file: string): string {
  return md5OfBytes(fs.readFileSync(file));
}
