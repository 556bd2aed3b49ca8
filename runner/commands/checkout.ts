import path from 'node:path';
import { openWorkspace, saveCaches, STATE_DIR, findRoot } from '../workspace.js';
import { RepoLock } from '../repo-lock.js';
import { sweepWorkspace } from '../litter.js';
import { openLocalCache } from '../cache/open.js';
import { checkoutOutputs, type CheckoutOutcome } from '../cache/checkout.js';
import { EXIT_DAMAGED_CACHE } from '../cache/object-store.js';
import type { Io } from '../cli-io.js';

export async function checkoutCommand(io: Io, args: { targets: string[]; force: boolean; json: boolean }): Promise<number> {
  const lock = await RepoLock.acquire(path.join(findRoot(io.cwd), STATE_DIR), 'checkout', 0);
  try {
    const ws = openWorkspace(io.cwd, { checkDeps: false });
    const cache = openLocalCache(ws.stateDir);
    sweepWorkspace(ws, cache.settings.dir);
    const items = await checkoutOutputs(ws, cache, { targets: args.targets, force: args.force });
    sweepWorkspace(ws);
    saveCaches(ws);
    const bad = items.filter((i) => i.outcome === 'missing' || i.outcome === 'refused' || i.outcome === 'damaged');
    if (args.json) {
      io.out(JSON.stringify({ ok: bad.length === 0, outputs: items }, null, 2));
    } else {
      for (const i of items) {
        if (i.outcome === 'restored') io.out(`↺ ${i.path}: restored from the cache`);
        else if (i.outcome === 'missing')
          io.err(`✗ ${i.path}: ${i.detail}; run ${i.stage.endsWith('.dvc') ? `'lockstep pull ${i.stage}'` : `'lockstep pull' or 'lockstep repro ${i.stage}'`}`);
        else if (i.outcome === 'refused') io.err(`✗ ${i.path}: ${i.detail}; rerun with --force to discard them`);
        else if (i.outcome === 'damaged')
          io.err(`✗ ${i.path}: not restored: ${i.detail}; 'lockstep repro ${i.stage}' makes it again, 'lockstep cache verify --repair' fetches a good copy`);
      }
      const n = (o: CheckoutOutcome) => items.filter((i) => i.outcome === o).length;
      io.out(
        `${items.length} output${items.length === 1 ? '' : 's'}: ${n('restored')} restored, ${n('unchanged')} unchanged${n('missing') ? `, ${n('missing')} missing` : ''}${n('refused') ? `, ${n('refused')} kept (local changes)` : ''}${n('damaged') ? `, ${n('damaged')} not restored (damaged cache object)` : ''}`,
      );
    }
    // A damaged cache is not bad input: its own named code (1, like the other outcomes that leave an output behind).
    return items.some((i) => i.outcome === 'damaged') ? EXIT_DAMAGED_CACHE : bad.length ? 1 : 0;
  } finally {
    lock.release();
  }
}
