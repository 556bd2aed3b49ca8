import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { splitKey } from '../config/params.js';
import { writeFileAtomic } from '../fs-util.js';
import type { Assignment } from './overrides.js';

/** Write overrides into params files in `root`, keeping their comments and layout. */
export function applyAssignment(root: string, assignment: Assignment): void {
  for (const [file, kv] of Object.entries(assignment)) {
    const abs = path.join(root, file);
    const text = fs.readFileSync(abs, 'utf8');
    if (/\.json$/i.test(file)) {
      const obj = JSON.parse(text) as Record<string, unknown>;
      for (const [k, v] of Object.entries(kv)) setIn(obj, splitKey(k), v);
      writeFileAtomic(abs, JSON.stringify(obj, null, 2) + '\n');
      continue;
    }
    const doc = YAML.parseDocument(text);
    for (const [k, v] of Object.entries(kv)) doc.setIn(splitKey(k), v);
    writeFileAtomic(abs, doc.toString({ lineWidth: 0 }));
  }
}

function setIn(obj: Record<string | number, unknown>, keys: (string | number)[], v: unknown): void {
  let cur = obj;
  for (const k of keys.slice(0, -1)) cur = cur[k] as Record<string | number, unknown>;
  cur[keys[keys.length - 1]!] = v;
}
