import fs from 'node:fs';
import path from 'node:path';
import { parse as parseTomlText } from 'smol-toml';
import { errnoCode } from '../fs-util.js';
import { parsePythonParams } from './python-params.js';
import { YamlSource } from './yaml-source.js';
import { UserError } from '../errors.js';
import type { ParsedFileCache } from './parsed-cache.js';
import type { ParamValue } from '../module-contract.js';

export type ParamsTree = { [key: string]: ParamValue };

/** Params files, read once per command and shared by every stage. */
export class ParamsFiles {
  private readonly trees = new Map<string, ParamsTree | undefined>();
  constructor(
    private readonly root: string,
    private readonly parsed?: ParsedFileCache,
  ) {}

  /** Parsed content of a repo-relative params file, or undefined if it does not exist. */
  get(file: string): ParamsTree | undefined {
    if (this.trees.has(file)) return this.trees.get(file);
    const abs = path.join(this.root, file);
    let tree: ParamsTree | undefined;
    if (/\.json$/i.test(file)) {
      const src = YamlSource.read(abs, file, this.parsed); // JSON is YAML 1.2; one parser, one error format
      tree = src ? asTree(src.toJS(), file) : undefined;
    } else if (/\.ya?ml$/i.test(file)) {
      const src = YamlSource.read(abs, file, this.parsed);
      tree = src ? asTree(src.toJS(), file) : undefined;
    } else if (/\.toml$/i.test(file)) {
      const text = readText(abs, file);
      tree = text === undefined ? undefined : parseToml(text, file);
    } else if (/\.py$/i.test(file)) {
      const text = readText(abs, file);
      tree = text === undefined ? undefined : parsePythonParams(text, file);
    } else {
      throw new UserError({
        message: `unsupported params file format: ${file}`,
        location: { file },
        hint: 'use a .yaml, .yml, .json, .toml or .py file (as DVC reads them)',
      });
    }
    this.trees.set(file, tree);
    return tree;
  }
}

/** Parse the text of a TOML or Python params file (e.g. read from a git revision); undefined for other formats. */
export function parseParamsText(file: string, text: string): ParamsTree | undefined {
  if (/\.toml$/i.test(file)) return parseToml(text, file);
  if (/\.py$/i.test(file)) return parsePythonParams(text, file);
  return undefined;
}

function readText(abs: string, file: string): string | undefined {
  try {
    return fs.readFileSync(abs, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
    throw new UserError({ message: `cannot read ${file}: ${(e as Error).message}`, location: { file } });
  }
}

/** TOML through smol-toml; dates and times become ISO strings, as they would be written in YAML. */
function parseToml(text: string, file: string): ParamsTree {
  let doc: unknown;
  try {
    doc = parseTomlText(text);
  } catch (e) {
    const err = e as { line?: number; column?: number; message: string };
    throw new UserError({
      message: `invalid TOML: ${err.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '')}`,
      location: { file, ...(err.line ? { line: err.line, column: err.column ?? 1 } : {}) },
    });
  }
  const plain = (v: unknown): ParamValue => {
    if (v instanceof Date) return v.toISOString();
    if (Array.isArray(v)) return v.map(plain);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
    if (typeof v === 'bigint') return Number(v);
    return v as ParamValue;
  };
  return plain(doc) as ParamsTree;
}

function asTree(v: unknown, file: string): ParamsTree {
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw new UserError({ message: `params file must hold a mapping at the top level`, location: { file } });
  }
  return v as ParamsTree;
}

/**
 * Look up a dotted key (`train.lr.C`, `layers[0]`).
 * Returns `{found: false}` rather than undefined so a null value stays distinguishable.
 */
export function lookup(tree: ParamValue | undefined, key: string): { found: true; value: ParamValue } | { found: false } {
  let cur: ParamValue | undefined = tree;
  for (const part of splitKey(key)) {
    if (typeof part === 'number') {
      if (!Array.isArray(cur) || part >= cur.length) return { found: false };
      cur = cur[part];
    } else {
      if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, part)) return { found: false };
      cur = (cur as ParamsTree)[part];
    }
  }
  return cur === undefined ? { found: false } : { found: true, value: cur };
}

export function splitKey(key: string): (string | number)[] {
  const parts: (string | number)[] = [];
  for (const seg of key.split('.')) {
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(seg);
    if (!m) {
      parts.push(seg);
      continue;
    }
    if (m[1]) parts.push(m[1]);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) parts.push(Number(idx[1]));
  }
  return parts;
}

/** All leaf keys of a tree in dotted form, for suggestions. */
export function allKeys(tree: ParamValue, prefix = ''): string[] {
  if (tree === null || typeof tree !== 'object' || Array.isArray(tree)) return prefix ? [prefix] : [];
  const keys: string[] = [];
  for (const [k, v] of Object.entries(tree)) {
    const full = prefix ? `${prefix}.${k}` : k;
    keys.push(full);
    keys.push(...allKeys(v, full).filter((x) => x !== full));
  }
  return keys;
}

/** Set a dotted key, creating intermediate maps; used to build a stage's nested params view. */
export function setKey(tree: ParamsTree, key: string, value: ParamValue): void {
  const parts = splitKey(key);
  let cur: ParamValue = tree;
  for (let i = 0; i < parts.length - 1; i++) {
    const p = parts[i]!;
    const container = cur as Record<string | number, ParamValue>;
    if (container[p] === undefined || container[p] === null || typeof container[p] !== 'object') {
      container[p] = typeof parts[i + 1] === 'number' ? [] : {};
    }
    cur = container[p]!;
  }
  (cur as Record<string | number, ParamValue>)[parts[parts.length - 1]!] = value;
}

/** Canonical JSON: sorted keys, so equal values always serialise (and hash) the same. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(v as object).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
}
