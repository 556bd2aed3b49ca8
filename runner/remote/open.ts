import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { chooseRemote, readRemotesConfig, type RemoteConfig } from './config.js';
import type { RemoteStore } from './types.js';

/** The configured remote named `name` (the default when none), opened. */
export async function remoteFor(
  ws: { readonly root: string; readonly stateDir: string },
  name: string | undefined,
): Promise<{ cfg: RemoteConfig; store: RemoteStore }> {
  const cfg = chooseRemote(readRemotesConfig(ws.stateDir), name);
  return { cfg, store: await openRemote(ws.root, cfg) };
}

/** A store for a configured remote: a folder path (relative to the repository root) or file:// URL. */
export async function openRemote(root: string, cfg: RemoteConfig): Promise<RemoteStore> {
  const url = cfg.url;
  if (/^file:\/\//.test(url) || !/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    const { DirRemote } = await import('./dir.js');
    const dir = path.resolve(root, url.replace(/^file:\/\//, ''));
    if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) {
      throw new UserError({ message: `remote '${cfg.name}': ${dir} is not a folder`, hint: "point the remote at a folder: 'lockstep remote add NAME PATH'" });
    }
    return new DirRemote(cfg.name, dir);
  }
  if (/^https?:\/\//i.test(url)) {
    const { HttpRemote } = await import('./http.js');
    const user = typeof cfg.options.user === 'string' ? cfg.options.user : undefined;
    // The password never sits in a config file that could be committed: it comes from the environment.
    const password = process.env[`LOCKSTEP_REMOTE_${envName(cfg.name)}_PASSWORD`] ?? process.env.LOCKSTEP_HTTP_PASSWORD;
    if (user && password === undefined) {
      throw new UserError({
        message: `remote '${cfg.name}' has user '${user}' but no password`,
        hint: `set LOCKSTEP_REMOTE_${envName(cfg.name)}_PASSWORD in the environment`,
      });
    }
    return new HttpRemote(cfg.name, url, user ? { user, password: password! } : undefined);
  }
  if (/^s3:\/\//i.test(url)) {
    const { S3Remote } = await import('./s3.js');
    const o = cfg.options;
    return S3Remote.open(cfg.name, url, {
      endpoint: typeof o.endpoint === 'string' ? o.endpoint : undefined,
      region: typeof o.region === 'string' ? o.region : undefined,
      forcePathStyle: typeof o.force_path_style === 'boolean' ? o.force_path_style : undefined,
    });
  }
  throw new UserError({ message: `remote '${cfg.name}': unsupported URL '${url}'`, hint: 'use a folder path, file://, http(s):// or s3://' });
}

function envName(remote: string): string {
  return remote.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}
