import path from 'node:path';
import { UserError, didYouMean } from '../errors.js';
import { YamlSource } from '../config/yaml-source.js';
import { isPlainObject } from '../config/pipeline.js';

export interface RemoteConfig {
  readonly name: string;
  readonly url: string;
  /** Transfers at once. */
  readonly jobs: number;
  /** Refuse uploads (e.g. the remote a pull-request build reads from). */
  readonly readOnly: boolean;
  /** Kind-specific settings (s3: endpoint, region, force_path_style; http: user). */
  readonly options: Readonly<Record<string, string | number | boolean>>;
}

export interface RemotesConfig {
  readonly remotes: ReadonlyMap<string, RemoteConfig>;
  readonly default?: string;
}

const REMOTE_KEYS = ['url', 'jobs', 'read_only', 'endpoint', 'region', 'force_path_style', 'user'];
const TOP_KEYS = ['remotes', 'default', 'cache', 'scheduler'];

/** `remotes:` and `default:` of .lockstep/config, overlaid remote by remote by .lockstep/config.local. */
export function readRemotesConfig(stateDir: string): RemotesConfig {
  const merged = new Map<string, Record<string, unknown>>();
  let dflt: string | undefined;
  for (const name of ['config', 'config.local']) {
    const display = path.join('.lockstep', name);
    const src = YamlSource.read(path.join(stateDir, name), display);
    const doc = src?.toJS();
    if (!src || doc === null || doc === undefined) continue;
    if (!isPlainObject(doc)) throw new UserError({ message: `${display} must be a mapping`, location: { file: display } });
    for (const k of Object.keys(doc)) {
      if (!TOP_KEYS.includes(k)) {
        const near = didYouMean(k, TOP_KEYS);
        throw new UserError({ message: `unknown field '${k}'${near ? `; ${near}` : ''}`, location: src.locate([k], true) });
      }
    }
    if (doc.default !== undefined) {
      if (typeof doc.default !== 'string') throw new UserError({ message: '`default` must be a remote name', location: src.locate(['default']) });
      dflt = doc.default;
    }
    if (doc.remotes === undefined) continue;
    if (!isPlainObject(doc.remotes)) throw new UserError({ message: '`remotes` must map names to settings', location: src.locate(['remotes']) });
    for (const [rname, r] of Object.entries(doc.remotes)) {
      if (!isPlainObject(r)) throw new UserError({ message: `remote '${rname}' must be a mapping with at least a url`, location: src.locate(['remotes', rname]) });
      for (const k of Object.keys(r)) {
        if (!REMOTE_KEYS.includes(k)) {
          const near = didYouMean(k, REMOTE_KEYS);
          throw new UserError({ message: `unknown field '${k}' in remote '${rname}'${near ? `; ${near}` : ''}`, location: src.locate(['remotes', rname, k], true) });
        }
      }
      if (r.jobs !== undefined && (!Number.isInteger(r.jobs) || (r.jobs as number) < 1)) {
        throw new UserError({ message: `remote '${rname}': jobs must be a whole number of at least 1`, location: src.locate(['remotes', rname, 'jobs']) });
      }
      merged.set(rname, { ...merged.get(rname), ...r });
    }
  }
  const remotes = new Map<string, RemoteConfig>();
  for (const [name, r] of merged) {
    if (typeof r.url !== 'string' || !r.url) throw new UserError({ message: `remote '${name}' has no url`, location: { file: '.lockstep/config' } });
    const { url, jobs, read_only, ...options } = r;
    remotes.set(name, { name, url, jobs: (jobs as number | undefined) ?? 8, readOnly: read_only === true, options: options as RemoteConfig['options'] });
  }
  return { remotes, default: dflt };
}

/** The remote to use: the one named, else the default, else the only one. */
export function chooseRemote(cfg: RemotesConfig, name: string | undefined): RemoteConfig {
  const names = [...cfg.remotes.keys()];
  if (names.length === 0) {
    throw new UserError({ message: 'no remote is configured', hint: "add one with 'lockstep remote add NAME URL' (a folder, http(s)://… or s3://bucket/prefix)" });
  }
  const pick = name ?? cfg.default ?? (names.length === 1 ? names[0] : undefined);
  if (pick === undefined) throw new UserError({ message: `${names.length} remotes are configured and none is the default`, hint: `choose one with -r (${names.join(', ')}) or set one with 'lockstep remote default NAME'` });
  const r = cfg.remotes.get(pick);
  if (!r) {
    const near = didYouMean(pick, names);
    throw new UserError({ message: `no remote named '${pick}'`, hint: near ?? `configured: ${names.join(', ')}` });
  }
  return r;
}
