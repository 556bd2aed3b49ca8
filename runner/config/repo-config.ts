import path from 'node:path';
import { UserError, didYouMean } from '../errors.js';
import { YamlSource } from './yaml-source.js';

/** The fields `.lockstep/config` (and `config.local`) may hold; each section is read by its own module. */
const CONFIG_TOP_KEYS = ['remotes', 'default', 'cache', 'allow_symlinked', 'container', 'scheduler'];

export interface ConfigFile {
  /** `.lockstep/config` or `.lockstep/config.local`, as shown in messages. */
  readonly display: string;
  readonly src: YamlSource;
  /** The top-level mapping (empty for an empty file). */
  readonly doc: Record<string, unknown>;
}

/**
 * The repository's config files, committed one first, each checked for shape
 * the same way whichever command reads it: a file that is not a mapping (binary
 * garbage, a bare string) or has an unknown field stops every command, rather
 * than being ignored by some and refused by others.
 */
export function readConfigFiles(stateDir: string): ConfigFile[] {
  const files: ConfigFile[] = [];
  for (const name of ['config', 'config.local']) {
    const display = path.posix.join('.lockstep', name);
    const src = YamlSource.read(path.join(stateDir, name), display);
    if (!src) continue;
    const doc = src.toJS();
    if (doc === null || doc === undefined) {
      files.push({ display, src, doc: {} });
      continue;
    }
    if (!isPlainObject(doc)) {
      throw new UserError({ message: `not a YAML mapping of settings (${CONFIG_TOP_KEYS.join(', ')})`, location: { file: display } });
    }
    for (const k of Object.keys(doc)) {
      if (!CONFIG_TOP_KEYS.includes(k)) {
        const near = didYouMean(k, CONFIG_TOP_KEYS);
        throw new UserError({ message: `unknown field '${k}'${near ? `; ${near}` : ''}`, location: src.locate([k], true) });
      }
    }
    files.push({ display, src, doc });
  }
  return files;
}

/**
 * `allow_symlinked:` — repository paths that may lead outside the repository
 * through a symlink on purpose (a data disk mounted elsewhere). Normalised,
 * repository-relative, POSIX.
 */
export function allowedSymlinked(stateDir: string): string[] {
  const out: string[] = [];
  for (const f of readConfigFiles(stateDir)) {
    const v = f.doc.allow_symlinked;
    if (v === undefined) continue;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x !== '')) {
      throw new UserError({ message: '`allow_symlinked` must be a list of repository paths', location: f.src.locate(['allow_symlinked']) });
    }
    v.forEach((p: string, i) => {
      const norm = path.posix.normalize(p).replace(/\/+$/, '');
      if (path.posix.isAbsolute(norm) || norm === '..' || norm.startsWith('../') || norm === '.') {
        throw new UserError({ message: `allow_symlinked entry '${p}' must be a path inside the repository`, location: f.src.locate(['allow_symlinked', i]) });
      }
      out.push(norm);
    });
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
