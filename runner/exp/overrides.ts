import YAML from 'yaml';
import { UserError, didYouMean } from '../errors.js';
import { allKeys, lookup, type ParamsFiles } from '../config/params.js';
import { DEFAULT_PARAMS } from '../config/pipeline.js';
import type { ParamValue } from '../module-contract.js';

/** One `-S [file:]key=v1,v2` argument: a key and the values to try. */
export interface Override {
  readonly file: string;
  readonly key: string;
  readonly values: readonly ParamValue[];
}

/** A single assignment of values: file → key → value. */
export type Assignment = Readonly<Record<string, Readonly<Record<string, ParamValue>>>>;

export function parseOverride(arg: string): Override {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new UserError({ message: `-S expects key=value, got '${arg}'`, hint: `for example -S train.lr.C=0.1 or -S params.yaml:split.seed=1,2` });
  const lhs = arg.slice(0, eq);
  const colon = lhs.indexOf(':');
  const file = colon > 0 ? lhs.slice(0, colon) : DEFAULT_PARAMS;
  const key = colon > 0 ? lhs.slice(colon + 1) : lhs;
  const values = splitTopLevel(arg.slice(eq + 1)).map((v) => parseScalar(v, key));
  if (values.length === 0) throw new UserError({ message: `-S ${arg} has no value` });
  return { file, key, values };
}

/**
 * Values are YAML: `0.1` is a number, `true` a boolean, `[1, 2]` a list, `abc` a string.
 * Text that is not valid YAML (`[1,2`) is a mistake, not a string: quoting is how to pass one.
 */
function parseScalar(text: string, key: string): ParamValue {
  try {
    return YAML.parse(text) as ParamValue;
  } catch (e) {
    const why = (e as Error).message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new UserError({
      message: `-S ${key}: '${text}' is not a valid YAML value (${why})`,
      hint: `quote it to set a string: -S "${key}='${text.replace(/'/g, "''")}'"`,
    });
  }
}

/** Split on commas that are not inside brackets or quotes, so `[1,2],[3]` is two values. */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let cur = '';
  for (const ch of s) {
    if (quote) {
      if (ch === quote) quote = undefined;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '[' || ch === '{') depth++;
    else if (ch === ']' || ch === '}') depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(cur.trim());
      cur = '';
      continue;
    }
    cur += ch;
  }
  if (cur.trim() !== '' || parts.length) parts.push(cur.trim());
  return parts.filter((p) => p !== '');
}

/** Every key must already exist in its params file: a typo should fail loudly, not add a new param. */
export function validateOverrides(overrides: readonly Override[], params: ParamsFiles): void {
  const errors = [];
  for (const o of overrides) {
    const tree = params.get(o.file);
    if (!tree) {
      errors.push({ message: `params file '${o.file}' (from -S ${o.file}:${o.key}) does not exist` });
      continue;
    }
    if (!lookup(tree, o.key).found) {
      errors.push({ message: `param '${o.key}' not found in ${o.file}`, hint: didYouMean(o.key, allKeys(tree)) });
    }
  }
  if (errors.length) throw new UserError(errors);
}

/** The cartesian product of every override's values, in argument order. */
export function expandGrid(overrides: readonly Override[]): Assignment[] {
  let acc: Record<string, Record<string, ParamValue>>[] = [{}];
  for (const o of overrides) {
    const next: typeof acc = [];
    for (const a of acc) {
      for (const v of o.values) next.push({ ...a, [o.file]: { ...(a[o.file] ?? {}), [o.key]: v } });
    }
    acc = next;
  }
  return acc;
}

export function describeAssignment(a: Assignment): string {
  return Object.entries(a)
    .flatMap(([file, kv]) => Object.entries(kv).map(([k, v]) => `${file === DEFAULT_PARAMS ? '' : file + ':'}${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`))
    .join(' ');
}
