import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { parseParamsText } from './config/params.js';
import { gitShow, requireRevision } from './git.js';
import { UserError } from './errors.js';

/** Where files are read from: the working tree, or a git revision (read with git show, no checkout). */
export type Revision = { readonly kind: 'workspace' } | { readonly kind: 'git'; readonly rev: string; readonly sha: string };

export const WORKSPACE: Revision = { kind: 'workspace' };

export function parseRevision(root: string, name: string | undefined): Revision {
  if (name === undefined || name === 'workspace') return WORKSPACE;
  return { kind: 'git', rev: name, sha: requireRevision(root, name) };
}

export function revisionName(r: Revision): string {
  return r.kind === 'workspace' ? 'workspace' : r.rev;
}

export function readAt(root: string, rev: Revision, relPath: string): string | undefined {
  if (rev.kind === 'git') return gitShow(root, rev.sha, relPath);
  try {
    return fs.readFileSync(path.join(root, relPath), 'utf8');
  } catch {
    return undefined;
  }
}

/** Parse a params or metrics file (YAML or JSON); a broken one is named, not thrown raw. */
export function parseDataFile(relPath: string, text: string, rev: Revision): unknown {
  const other = parseParamsText(relPath, text); // TOML and Python params
  if (other) return other;
  try {
    return /\.json$/i.test(relPath) ? JSON.parse(text) : YAML.parse(text);
  } catch (e) {
    throw new UserError({ message: `cannot parse ${relPath} at ${revisionName(rev)}: ${(e as Error).message.split('\n')[0]}` });
  }
}

/** Flatten nested mappings into dotted keys; lists stay values. */
export function flatten(v: unknown, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) out[prefix] = v;
  return out;
}
