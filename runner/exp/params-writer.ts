import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { splitKey } from '../config/params.js';
import { writeFileAtomic } from '../fs-util.js';
import { UserError } from '../errors.js';
import { deletedKey, type Assignment } from './overrides.js';
import { setPythonParams } from '../config/python-params.js';
import type { ParamValue } from '../module-contract.js';

/** Write overrides into params files in `root`, keeping their comments and layout where the format allows. */
export function applyAssignment(root: string, assignment: Assignment): void {
  for (const [file, kv] of Object.entries(assignment)) {
    const abs = path.join(root, file);
    const text = fs.readFileSync(abs, 'utf8');
    if (/\.json$/i.test(file)) writeFileAtomic(abs, JSON.stringify(applyToObject(JSON.parse(text) as Tree, kv), null, 2) + '\n');
    else if (/\.toml$/i.test(file)) writeFileAtomic(abs, applyToToml(text, kv));
    else if (/\.py$/i.test(file)) writeFileAtomic(abs, applyToPython(text, file, kv));
    else writeFileAtomic(abs, applyToYaml(text, kv));
  }
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
  const deleted = Object.keys(kv).map(deletedKey).find((k) => k !== undefined);
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
