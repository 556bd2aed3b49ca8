import { canonicalJson } from '../config/params.js';
import type { FlatValues } from './read.js';

/** One key that differs between two sets of flattened values (or every key, with `all`). */
export interface DiffRow {
  readonly path: string;
  readonly key: string;
  readonly old: unknown;
  readonly new: unknown;
  readonly change?: number;
}

/**
 * The keys whose values differ between `a` and `b` (every key with `all`),
 * sorted by file then key. Values compare by canonical JSON, so key order
 * inside objects is not a change; `change` is b − a when both are numbers. A
 * key present on one side only is a change (old or new is undefined), even
 * when the other side holds null.
 */
export function diffFlat(a: FlatValues, b: FlatValues, all: boolean): DiffRow[] {
  const rows: DiffRow[] = [];
  for (const file of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const x = a[file] ?? {};
    const y = b[file] ?? {};
    for (const key of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) {
      // canonicalJson writes a missing value as null: presence is compared first.
      const same = key in x === key in y && canonicalJson(x[key]) === canonicalJson(y[key]);
      if (same && !all) continue;
      const change = typeof x[key] === 'number' && typeof y[key] === 'number' ? (y[key] as number) - (x[key] as number) : undefined;
      rows.push({
        path: file,
        key,
        old: x[key],
        new: y[key],
        ...(change !== undefined ? { change } : {}),
      });
    }
  }
  return rows;
}
