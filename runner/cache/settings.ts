import path from 'node:path';
import { UserError, didYouMean } from '../errors.js';
import { isPlainObject } from '../config/pipeline.js';
import { readConfigFiles } from '../config/repo-config.js';
/** How outputs are placed in the workspace from the cache. */
export type LinkType = 'copy' | 'hardlink' | 'reflink';
const LINK_TYPES: readonly LinkType[] = ['copy', 'hardlink', 'reflink'];

export interface CacheSettings {
  /** Absolute path of the cache directory. */
  readonly dir: string;
  readonly link: LinkType;
}

const KEYS = ['dir', 'type'];

/**
 * The `cache:` section of .lockstep/config (committed) overlaid by
 * .lockstep/config.local (this machine only), then the environment:
 * LOCKSTEP_CACHE_DIR (experiments share one cache through it) and
 * LOCKSTEP_CACHE_TYPE.
 */
export function cacheSettings(stateDir: string, env: NodeJS.ProcessEnv = process.env): CacheSettings {
  let dir = path.join(stateDir, 'cache');
  let link: LinkType = 'copy';
  for (const { src, doc } of readConfigFiles(stateDir)) {
    if (doc.cache === undefined) continue;
    const c = doc.cache;
    const where = (keyPath: (string | number)[], key = false) => src.locate(keyPath, key);
    if (!isPlainObject(c)) throw new UserError({ message: '`cache` must be a mapping with `dir` and/or `type`', location: where(['cache']) });
    for (const k of Object.keys(c)) {
      if (!KEYS.includes(k)) {
        const near = didYouMean(k, KEYS);
        throw new UserError({ message: `unknown field 'cache.${k}'${near ? `; ${near}` : ''}`, location: where(['cache', k], true) });
      }
    }
    if (c.type !== undefined) {
      if (!LINK_TYPES.includes(c.type as LinkType)) {
        throw new UserError({ message: `cache.type must be one of ${LINK_TYPES.join(', ')}, got '${String(c.type)}'`, location: where(['cache', 'type']) });
      }
      link = c.type as LinkType;
    }
    if (c.dir !== undefined) {
      if (typeof c.dir !== 'string' || !c.dir) throw new UserError({ message: 'cache.dir must be a path', location: where(['cache', 'dir']) });
      dir = path.resolve(path.dirname(stateDir), c.dir);
    }
  }
  if (env.LOCKSTEP_CACHE_DIR) dir = path.resolve(env.LOCKSTEP_CACHE_DIR);
  if (env.LOCKSTEP_CACHE_TYPE) {
    if (!LINK_TYPES.includes(env.LOCKSTEP_CACHE_TYPE as LinkType)) {
      throw new UserError({ message: `LOCKSTEP_CACHE_TYPE must be one of ${LINK_TYPES.join(', ')}, got '${env.LOCKSTEP_CACHE_TYPE}'` });
    }
    link = env.LOCKSTEP_CACHE_TYPE as LinkType;
  }
  return { dir, link };
}
