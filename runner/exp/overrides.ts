import YAML from 'yaml';
import { UserError, didYouMean, type Diagnostic } from '../errors.js';
import { allKeys, canonicalJson, lookup, splitKey, type ParamsFiles } from '../config/params.js';
import { DEFAULT_PARAMS, isPlainObject } from '../config/pipeline.js';
import type { ParamValue } from '../module-contract.js';

/**
 * `exp run -S` arguments, spelled as DVC spells them (Hydra's override grammar):
 *
 *   key=v          set a key that exists          key=1,2 / key=choice(1,2) / key=range(1,5,2): a sweep
 *   +key=v         add a key that does not exist
 *   ++key=v        add or set, whichever applies
 *   ~key / ~key=v  delete a key (only if its value is v)
 *
 * Each may name its file: `-S other.yaml:lr=0.1`. One function per form below.
 */
type OverrideKind = 'set' | 'add' | 'force' | 'delete';

/** One `-S` argument: what to do with a key, and the values to try (one for a plain override, several for a sweep). */
export interface Override {
  readonly kind: OverrideKind;
  readonly file: string;
  readonly key: string;
  /** For 'delete': empty, or the one value the key must have. */
  readonly values: readonly ParamValue[];
  readonly arg: string;
}

/**
 * A single assignment of values: file → key → value. A key written `~key`
 * deletes `key` (JSON cannot hold "no value", and the record must survive a queue).
 */
export type Assignment = Readonly<Record<string, Readonly<Record<string, ParamValue>>>>;

const DELETE_PREFIX = '~';

export function parseOverride(arg: string): Override {
  // As DVC does: a ':' before the first '=' names the file, and the override follows it (`other.yaml:+x=1`).
  const lhs = arg.split('=')[0]!;
  const colon = lhs.indexOf(':');
  const file = colon > 0 ? arg.slice(0, colon) : DEFAULT_PARAMS;
  const rest = colon > 0 ? arg.slice(colon + 1) : arg;
  if (rest.startsWith('~')) return parseDelete(arg, file, rest.slice(1));
  if (rest.startsWith('++')) return parseAssign(arg, 'force', file, rest.slice(2));
  if (rest.startsWith('+')) return parseAssign(arg, 'add', file, rest.slice(1));
  return parseAssign(arg, 'set', file, rest);
}

/** `key=v`, `+key=v`, `++key=v` (the file and the prefix already taken off into `rest`). */
function parseAssign(arg: string, kind: Exclude<OverrideKind, 'delete'>, file: string, rest: string): Override {
  const eq = rest.indexOf('=');
  if (eq <= 0)
    throw new UserError({
      message: `-S expects key=value, got '${arg}'`,
      hint: `for example -S train.lr.C=0.1, -S +train.new=1, -S ~train.old or -S params.yaml:split.seed=1,2`,
    });
  const key = checkKey(arg, rest.slice(0, eq));
  const values = parseSweep(arg, rest.slice(eq + 1));
  return { kind, file, key, values, arg };
}

/** `~key` or `~key=v` (delete, only if the value is v). */
function parseDelete(arg: string, file: string, rest: string): Override {
  const eq = rest.indexOf('=');
  const key = checkKey(arg, eq < 0 ? rest : rest.slice(0, eq));
  if (eq < 0) return { kind: 'delete', file, key, values: [], arg };
  const values = parseSweep(arg, rest.slice(eq + 1));
  if (values.length !== 1) throw new UserError({ message: `-S ${arg}: a deletion takes at most one value (the one the key must have)` });
  return { kind: 'delete', file, key, values, arg };
}

function checkKey(arg: string, key: string): string {
  if (!/^[A-Za-z_][\w-]*(\[\d+\])*(\.[\w-]+(\[\d+\])*)*$/.test(key)) {
    throw new UserError({
      message: `-S ${arg}: '${key}' is not a params key`,
      hint: 'a key is dotted names, with [i] for list items: train.lr, layers[0].size',
    });
  }
  return key;
}

/** The values of a right-hand side: `v`, `v1,v2` (a grid), `choice(v1,v2)` or `range(start, stop[, step])`. */
export function parseSweep(arg: string, text: string): ParamValue[] {
  const call = /^\s*([A-Za-z_]\w*)\((.*)\)\s*$/s.exec(text);
  if (call) {
    const [, fn, inner] = call as unknown as [string, string, string];
    if (fn === 'choice') return parseChoice(arg, inner);
    if (fn === 'range') return parseRange(arg, inner);
    if (['glob', 'interval', 'sort', 'shuffle', 'tag', 'extend_list'].includes(fn)) {
      throw new UserError({ message: `-S ${arg}: ${fn}(…) is not supported`, hint: 'sweep with v1,v2, choice(v1,v2) or range(start, stop, step)' });
    }
  }
  const values = splitTopLevel(arg, text).map((t) => parseValue(arg, t));
  if (values.length === 0) throw new UserError({ message: `-S ${arg} has no value` });
  return values;
}

function parseChoice(arg: string, inner: string): ParamValue[] {
  const values = splitTopLevel(arg, inner).map((t) => parseValue(arg, t));
  if (values.length === 0) throw new UserError({ message: `-S ${arg}: choice() needs at least one value` });
  return values;
}

/** Hydra's range: Python's, start inclusive and stop exclusive, floats allowed. */
function parseRange(arg: string, inner: string): ParamValue[] {
  const nums = splitTopLevel(arg, inner).map((t) => {
    const n = Number(t);
    if (t === '' || !Number.isFinite(n))
      throw new UserError({ message: `-S ${arg}: range() takes numbers, got '${t}'`, hint: 'range(stop), range(start, stop) or range(start, stop, step)' });
    return n;
  });
  if (nums.length < 1 || nums.length > 3)
    throw new UserError({
      message: `-S ${arg}: range() takes 1 to 3 numbers, got ${nums.length}`,
      hint: 'range(stop), range(start, stop) or range(start, stop, step)',
    });
  const [start, stop, step] = nums.length === 1 ? [0, nums[0]!, 1] : [nums[0]!, nums[1]!, nums[2] ?? 1];
  if (step === 0) throw new UserError({ message: `-S ${arg}: range() step must not be zero` });
  const out: number[] = [];
  for (let i = 0; ; i++) {
    // start + i*step, not repeated addition, and rounded: range(0.1, 0.4, 0.1) is 0.1, 0.2, 0.3.
    const v = Number((start + i * step).toPrecision(12));
    if (step > 0 ? v >= stop : v <= stop) break;
    out.push(v);
    if (out.length > 10_000) throw new UserError({ message: `-S ${arg}: range() gives more than 10000 values` });
  }
  if (out.length === 0) throw new UserError({ message: `-S ${arg}: range(${inner}) gives no values` });
  return out;
}

/** Values are YAML: `0.1` is a number, `true` a boolean, `[1, 2]` a list, `abc` a string; anything else is an error. */
function parseValue(arg: string, text: string): ParamValue {
  try {
    return YAML.parse(text, { prettyErrors: false }) as ParamValue;
  } catch (e) {
    throw new UserError({
      message: `-S ${arg}: '${text}' is not a valid value (${(e as Error).message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')})`,
      hint: `quote it to set a string: -S "${arg.slice(0, arg.length - text.length)}'${text.replace(/'/g, "''")}'"`,
    });
  }
}

/** Split on commas that are not inside brackets, parentheses or quotes, so `[1,2],[3]` is two values. */
function splitTopLevel(arg: string, s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let cur = '';
  for (const ch of s) {
    if (quote) {
      if (ch === quote) quote = undefined;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if ('[{('.includes(ch)) depth++;
    else if (']})'.includes(ch)) depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(cur.trim());
      cur = '';
      continue;
    }
    cur += ch;
  }
  if (quote) throw new UserError({ message: `-S ${arg}: unterminated quote in '${s}'` });
  if (cur.trim() !== '' || parts.length) parts.push(cur.trim());
  if (parts.some((p) => p === '') && parts.length > 1) throw new UserError({ message: `-S ${arg}: empty value in '${s}'` });
  return parts.filter((p) => p !== '');
}

/** Check each override against its params file: what `set` and `~` name must exist, what `+` adds must not. */
export function validateOverrides(overrides: readonly Override[], params: ParamsFiles): void {
  const errors: Diagnostic[] = [];
  for (const o of overrides) {
    const tree = params.get(o.file);
    if (!tree) {
      errors.push({ message: `params file '${o.file}' (from -S ${o.arg}) does not exist` });
      continue;
    }
    const found = lookup(tree, o.key);
    const where = `${o.file}`;
    if (o.kind === 'set' && !found.found) {
      errors.push({ message: `param '${o.key}' not found in ${where}`, hint: didYouMean(o.key, allKeys(tree)) ?? `to add it, use -S +${o.key}=…` });
    } else if (o.kind === 'add' && found.found) {
      errors.push({ message: `param '${o.key}' already exists in ${where}`, hint: `to change it, use -S ${o.key}=… (or ++${o.key}=… to add or change)` });
    } else if (o.kind === 'delete' && !found.found) {
      errors.push({ message: `cannot delete '${o.key}': not found in ${where}`, hint: didYouMean(o.key, allKeys(tree)) });
    } else if (o.kind === 'delete' && found.found && o.values.length && canonicalJson(found.value) !== canonicalJson(o.values[0])) {
      errors.push({ message: `cannot delete '${o.key}': its value in ${where} is ${canonicalJson(found.value)}, not ${canonicalJson(o.values[0])}` });
    } else if (o.kind === 'add' || o.kind === 'force') {
      const blocked = blockingParent(tree, o.key);
      if (blocked) errors.push({ message: `cannot add '${o.key}': '${blocked}' in ${where} is a value, not a mapping` });
    }
  }
  if (errors.length) throw new UserError(errors);
}

/** The first prefix of `key` that exists as a non-mapping (a new key cannot go under it). */
function blockingParent(tree: ParamValue, key: string): string | undefined {
  const parts = splitKey(key);
  let prefix = '';
  for (const p of parts.slice(0, -1)) {
    prefix = typeof p === 'number' ? `${prefix}[${p}]` : prefix ? `${prefix}.${p}` : p;
    const r = lookup(tree, prefix);
    if (!r.found) return undefined;
    if (!isPlainObject(r.value) && !(Array.isArray(r.value) && typeof parts[parts.indexOf(p) + 1] === 'number')) return prefix;
  }
  return undefined;
}

/** The cartesian product of every override's values, in argument order; a deletion is in every assignment. */
export function expandGrid(overrides: readonly Override[]): Assignment[] {
  let acc: Record<string, Record<string, ParamValue>>[] = [{}];
  for (const o of overrides) {
    const key = o.kind === 'delete' ? DELETE_PREFIX + o.key : o.key;
    const values = o.kind === 'delete' ? [null] : o.values;
    const next: typeof acc = [];
    for (const a of acc) {
      for (const v of values) next.push({ ...a, [o.file]: { ...(a[o.file] ?? {}), [key]: v } });
    }
    acc = next;
  }
  return acc;
}

/** Whether an assignment key deletes, and the key it deletes. */
export function deletedKey(key: string): string | undefined {
  return key.startsWith(DELETE_PREFIX) ? key.slice(DELETE_PREFIX.length) : undefined;
}

export function describeAssignment(a: Assignment): string {
  return Object.entries(a)
    .flatMap(([file, kv]) =>
      Object.entries(kv).map(([k, v]) => {
        const f = file === DEFAULT_PARAMS ? '' : file + ':';
        return deletedKey(k) !== undefined ? `${f}~${deletedKey(k)}` : `${f}${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`;
      }),
    )
    .join(' ');
}
