import fs from 'node:fs';
import path from 'node:path';
import YAML, { isMap } from 'yaml';
import { STATE_DIR } from '../workspace.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../fs-util.js';
import { endpointProblem, readRemotesConfig, remoteUrlProblem, REMOTE_URL_HINT, type RemotesConfig } from './config.js';

/**
 * Changing the configured remotes (`lockstep remote add/remove/default`).
 * .lockstep/config (shared) or config.local (this machine) is edited as a
 * YAML document, so the user's comments survive, and read back after each
 * write so a bad value never stays behind.
 */

function editConfig(stateDir: string, local: boolean, edit: (doc: YAML.Document) => void): void {
  const file = path.join(stateDir, local ? 'config.local' : 'config');
  const doc = fs.existsSync(file) ? YAML.parseDocument(fs.readFileSync(file, 'utf8')) : new YAML.Document({});
  if (doc.errors.length)
    throw new UserError({
      message: `${path.join(STATE_DIR, path.basename(file))} is not valid YAML; fix it first`,
      location: { file: path.join(STATE_DIR, path.basename(file)) },
    });
  if (!isMap(doc.contents)) doc.contents = doc.createNode({}) as never;
  edit(doc);
  writeFileAtomic(file, doc.toString());
  readRemotesConfig(stateDir); // what we wrote must read back cleanly
}

/** The keys `-o key=value` may set. */
const OPTION_KEYS = ['jobs', 'read_only', 'endpoint', 'region', 'force_path_style', 'user'];

function optionValue(key: string, raw: string): string | number | boolean {
  if (key === 'jobs') {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1)
      throw new UserError({
        message: `jobs must be a whole number of at least 1, got '${raw}'`,
      });
    return n;
  }
  if (key === 'read_only' || key === 'force_path_style') {
    if (raw !== 'true' && raw !== 'false')
      throw new UserError({
        message: `${key} must be true or false, got '${raw}'`,
      });
    return raw === 'true';
  }
  if (key === 'endpoint') {
    const why = endpointProblem(raw);
    if (why) throw new UserError({ message: why });
  }
  return raw;
}

function requireRemote(cfg: RemotesConfig, name: string, addHint: boolean): void {
  if (cfg.remotes.has(name)) return;
  throw new UserError({
    message: `no remote named '${name}'`,
    hint: cfg.remotes.size ? `configured: ${[...cfg.remotes.keys()].join(', ')}` : addHint ? `add it first: lockstep remote add ${name} URL` : undefined,
  });
}

/** Add (or replace) a remote; `options` are `key=value` strings as given to -o. Everything is checked before anything is written. */
export function addRemote(
  stateDir: string,
  r: {
    name: string;
    url: string;
    options: readonly string[];
    makeDefault: boolean;
    local: boolean;
  },
): void {
  if (!/^[A-Za-z0-9][\w.-]*$/.test(r.name))
    throw new UserError({
      message: `remote name '${r.name}' must be letters, digits, '.', '_' or '-'`,
    });
  const urlProblem = remoteUrlProblem(r.url);
  if (urlProblem)
    throw new UserError({
      message: `remote '${r.name}': ${urlProblem}`,
      hint: REMOTE_URL_HINT,
    });
  const opts: Record<string, string | number | boolean> = {};
  for (const o of r.options) {
    const m = /^([\w]+)=(.*)$/.exec(o);
    if (!m || !OPTION_KEYS.includes(m[1]!))
      throw new UserError({
        message: `-o takes key=value with key one of ${OPTION_KEYS.join(', ')}, got '${o}'`,
      });
    opts[m[1]!] = optionValue(m[1]!, m[2]!);
  }
  editConfig(stateDir, r.local, (doc) => {
    doc.setIn(['remotes', r.name], doc.createNode({ url: r.url, ...opts }));
    if (r.makeDefault) doc.set('default', r.name);
  });
}

/** Remove a remote from both config files (and as the default). */
export function removeRemote(stateDir: string, name: string): void {
  requireRemote(readRemotesConfig(stateDir), name, false);
  for (const local of [false, true]) {
    if (!fs.existsSync(path.join(stateDir, local ? 'config.local' : 'config'))) continue;
    editConfig(stateDir, local, (doc) => {
      doc.deleteIn(['remotes', name]);
      if (doc.get('default') === name) doc.delete('default');
    });
  }
}

export function setDefaultRemote(stateDir: string, name: string, local: boolean): void {
  requireRemote(readRemotesConfig(stateDir), name, true);
  editConfig(stateDir, local, (doc) => doc.set('default', name));
}
