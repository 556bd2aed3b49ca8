import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import YAML from 'yaml';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { splitKey } from '../config/params.js';
import { writeFileAtomic } from '../fs-util.js';
import { UserError } from '../errors.js';
import { deletedKey, type Assignment } from './overrides.js';
import { setPythonParams } from '../config/python-params.js';
import type { ParamValue } from '../module-contract.js';

/**
 * Write overrides into params files in `root`. In YAML and JSON, setting a key
 * that exists changes only the bytes of its value: comments, flow style
 * (`{uniform: [0.01, 0.31]}`), quoting, key order and blank lines stay exactly
 * as they were, so `git diff` shows the one edit. Adding (`+key`) or deleting
 * (`~key`) a key edits the document around it.
 */
export function applyAssignment(root: string, assignment: Assignment): void {
  for (const [file, kv] of Object.entries(assignment)) {
    const abs = path.join(root, file);
    const text = fs.readFileSync(abs, 'utf8');
    if (/\.toml$/i.test(file)) writeFileAtomic(abs, applyToToml(text, kv));
    else if (/\.py$/i.test(file)) writeFileAtomic(abs, applyToPython(text, file, kv));
    else writeFileAtomic(abs, applyToYamlOrJson(text, kv, /\.json$/i.test(file), file));
  }
}

function applyToYamlOrJson(text: string, kv: Readonly<Record<string, ParamValue>>, json: boolean, file: string): string {
  let out = text;
  for (const [k, v] of Object.entries(kv)) {
    const del = deletedKey(k);
    const keys = splitKey(del ?? k);
    if (del === undefined && YAML.parseDocument(out).hasIn(keys)) out = setValueInText(out, keys, v, { json, file });
    else if (json) out = JSON.stringify(applyToObject(JSON.parse(out) as Tree, { [k]: v }), null, 2) + '\n';
    else out = applyToYaml(out, { [k]: v });
  }
  return out;
}

type Tree = Record<string | number, unknown>;

function applyToYaml(text: string, kv: Readonly<Record<string, ParamValue>>): string {
  const doc = YAML.parseDocument(text);
  for (const [k, v] of Object.entries(kv)) {
    const del = deletedKey(k);
    if (del !== undefined) doc.deleteIn(splitKey(del));
    else doc.setIn(splitKey(k), v); // creates missing mappings on the way, for +key=v
  }
  return doc.toString({ lineWidth: 0 });
}

/** TOML has no comment-keeping editor here: the file is rewritten from its values (comments are lost). */
function applyToToml(text: string, kv: Readonly<Record<string, ParamValue>>): string {
  return stringifyToml(applyToObject(parseToml(text) as Tree, kv)).replace(/\n*$/, '\n');
}

/** Python: existing single-line assignments get their new value, as DVC edits them; nothing is added or deleted. */
function applyToPython(text: string, file: string, kv: Readonly<Record<string, ParamValue>>): string {
  const deleted = Object.keys(kv)
    .map(deletedKey)
    .find((k) => k !== undefined);
  if (deleted !== undefined) throw new UserError({ message: `cannot delete '${deleted}' from ${file}: Lockstep does not delete Python params` });
  return setPythonParams(text, file, new Map(Object.entries(kv)));
}

function applyToObject(obj: Tree, kv: Readonly<Record<string, ParamValue>>): Tree {
  for (const [k, v] of Object.entries(kv)) {
    const del = deletedKey(k);
    const keys = splitKey(del ?? k);
    let cur = obj;
    for (const [i, p] of keys.slice(0, -1).entries()) {
      if (cur[p] === undefined || cur[p] === null || typeof cur[p] !== 'object') cur[p] = typeof keys[i + 1] === 'number' ? [] : {};
      cur = cur[p] as Tree;
    }
    const last = keys[keys.length - 1]!;
    if (del === undefined) cur[last] = v;
    else if (Array.isArray(cur) && typeof last === 'number') cur.splice(last, 1);
    else delete cur[last];
  }
  return obj;
}

type Key = string | number;

/**
 * Replace the value at `keys` inside YAML (or JSON, which is YAML) text by
 * splicing new text into the value's source range. The result is parsed back
 * and must hold `value` there; a rendering that does not (a plain string with
 * a comma inside a flow mapping) falls back to a JSON-quoted form.
 */
export function setValueInText(text: string, keys: readonly Key[], value: unknown, { json, file = 'params' }: { json: boolean; file?: string }): string {
  const doc = YAML.parseDocument(text);
  const node = doc.getIn(keys, true);
  if (!YAML.isNode(node) || !node.range) throw new UserError({ message: `param '${keys.join('.')}' not found in ${file}` });
  const { start, end, glue } = spliceRange(text, node);
  const renderings = json ? [JSON.stringify(value)] : [yamlText(value, node), JSON.stringify(value)];
  for (const r of renderings) {
    const out = text.slice(0, start) + glue + r + text.slice(end);
    if (holds(out, keys, value)) return out;
  }
  throw new UserError({ message: `cannot write ${JSON.stringify(value)} to '${keys.join('.')}' in ${file} without rewriting the file` });
}

/**
 * Where the value's bytes are, and what goes before the new ones. A block
 * collection becomes flow: the line break before it goes too, so `k:\n  - 1`
 * turns into `k: [1]`. An empty value (`key:` at the end of its line) needs a space.
 */
function spliceRange(text: string, node: YAML.Node): { start: number; end: number; glue: string } {
  const [start, end] = node.range!;
  if ((YAML.isMap(node) || YAML.isSeq(node)) && !node.flow) {
    let s = start;
    while (s > 0 && /\s/.test(text[s - 1]!)) s--;
    const trimmedEnd = start + text.slice(start, end).trimEnd().length;
    return text[s - 1] === ':' || text[s - 1] === '-' ? { start: s, end: trimmedEnd, glue: ' ' } : { start, end: trimmedEnd, glue: '' };
  }
  return { start, end, glue: start === end && text[start - 1] === ':' ? ' ' : '' };
}

/** The value as inline YAML; a string keeps the quoting style of the value it replaces. */
function yamlText(value: unknown, old: YAML.Node): string {
  const quote = YAML.isScalar(old) && (old.type === 'QUOTE_DOUBLE' || old.type === 'QUOTE_SINGLE') ? old.type : 'PLAIN';
  return YAML.stringify(value, { collectionStyle: 'flow', flowCollectionPadding: false, lineWidth: 0, defaultStringType: quote }).trimEnd();
}

function holds(text: string, keys: readonly Key[], value: unknown): boolean {
  try {
    const doc = YAML.parseDocument(text);
    if (doc.errors.length) return false;
    const n = doc.getIn(keys, true);
    return isDeepStrictEqual(YAML.isNode(n) ? n.toJSON() : n, value);
  } catch {
    return false;
  }
}
