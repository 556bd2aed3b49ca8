import { UserError, didYouMean } from '../errors.js';
import { isPlainObject } from '../config/pipeline.js';
import { readConfigFiles } from '../config/repo-config.js';

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

/** `remotes:` and `default:` of .lockstep/config, overlaid remote by remote by .lockstep/config.local. */
export function readRemotesConfig(stateDir: string): RemotesConfig {
  const merged = new Map<string, Record<string, unknown>>();
  let dflt: string | undefined;
  for (const { src, doc } of readConfigFiles(stateDir)) {
    if (doc.default !== undefined) {
      if (typeof doc.default !== 'string') throw new UserError({ message: '`default` must be a remote name', location: src.locate(['default']) });
      dflt = doc.default;
    }
    if (doc.remotes === undefined) continue;
    if (!isPlainObject(doc.remotes)) throw new UserError({ message: '`remotes` must map names to settings', location: src.locate(['remotes']) });
    for (const [rname, r] of Object.entries(doc.remotes)) {
      if (!isPlainObject(r))
        throw new UserError({ message: `remote '${rname}' must be a mapping with at least a url`, location: src.locate(['remotes', rname]) });
      for (const k of Object.keys(r)) {
        if (!REMOTE_KEYS.includes(k)) {
          const near = didYouMean(k, REMOTE_KEYS);
          throw new UserError({
            message: `unknown field '${k}' in remote '${rname}'${near ? `; ${near}` : ''}`,
            location: src.locate(['remotes', rname, k], true),
          });
        }
      }
      if (r.jobs !== undefined && (!Number.isInteger(r.jobs) || (r.jobs as number) < 1)) {
        throw new UserError({ message: `remote '${rname}': jobs must be a whole number of at least 1`, location: src.locate(['remotes', rname, 'jobs']) });
      }
      if (r.endpoint !== undefined) {
        const why = endpointProblem(r.endpoint);
        if (why) throw new UserError({ message: `remote '${rname}': ${why}`, location: src.locate(['remotes', rname, 'endpoint']) });
      }
      if (r.url !== undefined) {
        const why = remoteUrlProblem(r.url);
        if (why) throw new UserError({ message: `remote '${rname}': ${why}`, location: src.locate(['remotes', rname, 'url']), hint: REMOTE_URL_HINT });
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

export const REMOTE_URL_HINT = 'a remote is a folder path, file:///path, http(s)://host/path (WebDAV) or s3://bucket/prefix';

/**
 * What is wrong with a remote URL, or undefined when it is one we can open.
 * Checked when a remote is added and whenever the config is read, so a typo
 * is one line at `remote add` and at use, never a failure deep in a transfer.
 */
export function remoteUrlProblem(url: unknown): string | undefined {
  if (typeof url !== 'string' || url.trim() === '') return 'the url must be a non-empty string';
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) return undefined; // a folder path, relative to the repository
  if (scheme === 'file') return url.slice('file://'.length) === '' ? `'${url}' names no folder` : undefined;
  if (scheme === 'http' || scheme === 'https') {
    try {
      if (new URL(url).hostname === '') return `'${url}' has no host`;
    } catch {
      return `'${url}' is not a valid URL`;
    }
    return undefined;
  }
  if (scheme === 's3') {
    const bucket = /^s3:\/\/([^/]*)/i.exec(url)![1]!;
    if (bucket === '') return `'${url}' has no bucket (s3://bucket/prefix)`;
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) return `'${bucket}' in '${url}' is not a valid S3 bucket name`;
    return undefined;
  }
  return `unsupported URL scheme '${scheme}://' in '${url}'`;
}

/** What is wrong with an S3 `endpoint:` (it must be an http(s) URL), or undefined. */
export function endpointProblem(endpoint: unknown): string | undefined {
  if (typeof endpoint !== 'string') return 'endpoint must be an http(s) URL';
  try {
    const u = new URL(endpoint);
    if ((u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '') return undefined;
  } catch {
    // reported below
  }
  return `endpoint '${endpoint}' is not an http(s) URL (for example http://127.0.0.1:9000)`;
}

/** The remote to use: the one named, else the default, else the only one. */
export function chooseRemote(cfg: RemotesConfig, name: string | undefined): RemoteConfig {
  const names = [...cfg.remotes.keys()];
  if (names.length === 0) {
    throw new UserError({
      message: 'no remote is configured',
      hint: "add one with 'lockstep remote add NAME URL' (a folder, http(s)://… or s3://bucket/prefix)",
    });
  }
  const pick = name ?? cfg.default ?? (names.length === 1 ? names[0] : undefined);
  if (pick === undefined)
    throw new UserError({
      message: `${names.length} remotes are configured and none is the default`,
      hint: `choose one with -r (${names.join(', ')}) or set one with 'lockstep remote default NAME'`,
    });
  const r = cfg.remotes.get(pick);
  if (!r) {
    const near = didYouMean(pick, names);
    throw new UserError({ message: `no remote named '${pick}'`, hint: near ?? `configured: ${names.join(', ')}` });
  }
  return r;
}
