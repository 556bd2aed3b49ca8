import fs from 'node:fs';
import path from 'node:path';
import YAML, { isMap } from 'yaml';
import { findRoot, STATE_DIR } from '../workspace.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../fs-util.js';
import { endpointProblem, readRemotesConfig, remoteUrlProblem, REMOTE_URL_HINT } from '../remote/config.js';
import type { Io } from '../cli-io.js';

/** Edit .lockstep/config (or config.local) as a YAML document, so the user's comments survive. */
function editConfig(stateDir: string, local: boolean, edit: (doc: YAML.Document) => void): void {
  const file = path.join(stateDir, local ? 'config.local' : 'config');
  const doc = fs.existsSync(file) ? YAML.parseDocument(fs.readFileSync(file, 'utf8')) : new YAML.Document({});
  if (doc.errors.length) throw new UserError({ message: `${path.join(STATE_DIR, path.basename(file))} is not valid YAML; fix it first`, location: { file: path.join(STATE_DIR, path.basename(file)) } });
  if (!isMap(doc.contents)) doc.contents = doc.createNode({}) as never;
  edit(doc);
  writeFileAtomic(file, doc.toString());
  readRemotesConfig(stateDir); // what we wrote must read back cleanly
}

const OPTION_KEYS = ['jobs', 'read_only', 'endpoint', 'region', 'force_path_style', 'user'];

function optionValue(key: string, raw: string): string | number | boolean {
  if (key === 'jobs') {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new UserError({ message: `jobs must be a whole number of at least 1, got '${raw}'` });
    return n;
  }
  if (key === 'read_only' || key === 'force_path_style') {
    if (raw !== 'true' && raw !== 'false') throw new UserError({ message: `${key} must be true or false, got '${raw}'` });
    return raw === 'true';
  }
  if (key === 'endpoint') {
    const why = endpointProblem(raw);
    if (why) throw new UserError({ message: why });
  }
  return raw;
}

export function remoteCommand(io: Io, args: { sub: string | undefined; positionals: string[]; default: boolean; local: boolean; options: string[] }): number {
  const stateDir = path.join(findRoot(io.cwd), STATE_DIR);
  const [a, b] = args.positionals;
  switch (args.sub) {
    case 'add': {
      if (!a || !b || args.positionals.length > 2) throw new UserError({ message: 'usage: lockstep remote add NAME URL [--default] [--local] [-o key=value …]' });
      if (!/^[A-Za-z0-9][\w.-]*$/.test(a)) throw new UserError({ message: `remote name '${a}' must be letters, digits, '.', '_' or '-'` });
      const urlProblem = remoteUrlProblem(b);
      if (urlProblem) throw new UserError({ message: `remote '${a}': ${urlProblem}`, hint: REMOTE_URL_HINT });
      const opts: Record<string, string | number | boolean> = {};
      for (const o of args.options) {
        const m = /^([\w]+)=(.*)$/.exec(o);
        if (!m || !OPTION_KEYS.includes(m[1]!)) throw new UserError({ message: `-o takes key=value with key one of ${OPTION_KEYS.join(', ')}, got '${o}'` });
        opts[m[1]!] = optionValue(m[1]!, m[2]!);
      }
      editConfig(stateDir, args.local, (doc) => {
        doc.setIn(['remotes', a], doc.createNode({ url: b, ...opts }));
        if (args.default) doc.set('default', a);
      });
      io.out(`added remote '${a}' → ${b}${args.default ? ' (default)' : ''} in ${STATE_DIR}/${args.local ? 'config.local' : 'config'}`);
      return 0;
    }
    case 'remove': {
      if (!a) throw new UserError({ message: 'usage: lockstep remote remove NAME' });
      const cfg = readRemotesConfig(stateDir);
      if (!cfg.remotes.has(a)) throw new UserError({ message: `no remote named '${a}'`, hint: cfg.remotes.size ? `configured: ${[...cfg.remotes.keys()].join(', ')}` : undefined });
      for (const local of [false, true]) {
        const file = path.join(stateDir, local ? 'config.local' : 'config');
        if (!fs.existsSync(file)) continue;
        editConfig(stateDir, local, (doc) => {
          doc.deleteIn(['remotes', a]);
          if (doc.get('default') === a) doc.delete('default');
        });
      }
      io.out(`removed remote '${a}'`);
      return 0;
    }
    case 'default': {
      if (!a) throw new UserError({ message: 'usage: lockstep remote default NAME' });
      const cfg = readRemotesConfig(stateDir);
      if (!cfg.remotes.has(a)) throw new UserError({ message: `no remote named '${a}'`, hint: cfg.remotes.size ? `configured: ${[...cfg.remotes.keys()].join(', ')}` : `add it first: lockstep remote add ${a} URL` });
      editConfig(stateDir, args.local, (doc) => doc.set('default', a));
      io.out(`default remote: ${a}`);
      return 0;
    }
    case 'list':
    case undefined: {
      const cfg = readRemotesConfig(stateDir);
      if (cfg.remotes.size === 0) io.out("no remotes; add one with 'lockstep remote add NAME URL'");
      for (const r of cfg.remotes.values()) io.out(`${r.name}\t${r.url}${r.name === cfg.default ? '\t(default)' : ''}${r.readOnly ? '\t(read-only)' : ''}`);
      return 0;
    }
    default:
      throw new UserError({ message: `unknown remote command '${args.sub}'`, hint: 'use add, list, remove or default' });
  }
}
