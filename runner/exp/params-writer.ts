import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import YAML from 'yaml';
import { splitKey } from '../config/params.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../fs-util.js';
import type { Assignment } from './overrides.js';

/**
 * Write overrides into params files in `root`. Only the bytes of each value set
 * change: comments, flow style (`{uniform: [0.01, 0.31]}`), quoting, key order
 * and blank lines stay exactly as they were, so `git diff` shows the one edit.
 */
export function applyAssignment(root: string, assignment: Assignment): void {
  for (const [file, kv] of Object.entries(assignment)) {
    const abs = path.join(root, file);
    let text = fs.readFileSync(abs, 'utf8');
    for (const [k, v] of Object.entries(kv)) text = setValueInText(text, splitKey(k), v, /\.json$/i.test(file), file);
    writeFileAtomic(abs, text);
  }
}

type Key = string | number;

/**
 * Replace the value at `keys` inside YAML (or JSON, which is YAML) text by
 * splicing new text into the value's source range. The result is parsed back
 * and must hold `value` there; a rendering that does not (a plain string with
 * a comma inside a flow mapping) falls back to a JSON-quoted form.
 */
export function setValueInText(text: string, keys: readonly Key[], value: unknown, json: boolean, file = 'params'): string {
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
