import path from 'node:path';
import { findRoot, STATE_DIR } from '../workspace.js';
import { UserError } from '../errors.js';
import { readRemotesConfig } from '../remote/config.js';
import { addRemote, removeRemote, setDefaultRemote } from '../remote/config-edit.js';
import type { Io } from '../cli-io.js';

export function remoteCommand(io: Io, args: { sub: string | undefined; positionals: string[]; default: boolean; local: boolean; options: string[] }): number {
  const stateDir = path.join(findRoot(io.cwd), STATE_DIR);
  const [a, b] = args.positionals;
  switch (args.sub) {
    case 'add': {
      if (!a || !b || args.positionals.length > 2)
        throw new UserError({ message: 'usage: lockstep remote add NAME URL [--default] [--local] [-o key=value …]' });
      addRemote(stateDir, { name: a, url: b, options: args.options, makeDefault: args.default, local: args.local });
      io.out(`added remote '${a}' → ${b}${args.default ? ' (default)' : ''} in ${STATE_DIR}/${args.local ? 'config.local' : 'config'}`);
      return 0;
    }
    case 'remove': {
      if (!a) throw new UserError({ message: 'usage: lockstep remote remove NAME' });
      removeRemote(stateDir, a);
      io.out(`removed remote '${a}'`);
      return 0;
    }
    case 'default': {
      if (!a) throw new UserError({ message: 'usage: lockstep remote default NAME' });
      setDefaultRemote(stateDir, a, args.local);
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
