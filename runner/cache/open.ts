import type { Workspace } from '../workspace.js';
import { ObjectStore } from './object-store.js';
import { RunCache, trustFromEnv } from './run-cache.js';
import { cacheSettings, type CacheSettings } from './settings.js';
import { StageCache, type Fetcher } from './stage-cache.js';

export interface LocalCache {
  readonly settings: CacheSettings;
  readonly store: ObjectStore;
  readonly runs: RunCache;
}

/** The repository's cache as configured (.lockstep/config, config.local, environment). */
export function openLocalCache(stateDir: string, settings: CacheSettings = cacheSettings(stateDir)): LocalCache {
  return { settings, store: new ObjectStore(settings.dir), runs: new RunCache(settings.dir, trustFromEnv()) };
}

export function stageCacheFor(
  ws: Workspace,
  cache: LocalCache,
  opts: { warn: (stage: string, message: string) => void; useRunCache: boolean; fetcher?: Fetcher },
): StageCache {
  return new StageCache({ root: ws.root, store: cache.store, runs: cache.runs, link: cache.settings.link, hasher: ws.hasher, ...opts });
}
