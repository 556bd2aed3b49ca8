import { openWorkspace, saveCaches } from '../workspace.js';
import { selectStages } from '../executor.js';
import { observeInputs, observeOuts } from '../observe.js';
import { describeReason, staleReasons, type Reason } from '../staleness.js';
import type { Io } from '../cli-io.js';

export interface StageStatus {
  readonly name: string;
  readonly frozen: boolean;
  readonly reasons: readonly Reason[];
}

/** Staleness of every selected stage; a stage downstream of a stale one is stale too. */
export async function computeStatus(cwd: string, targets: readonly string[]): Promise<StageStatus[]> {
  const ws = openWorkspace(cwd);
  const selected = selectStages(ws, { targets, single: false, downstream: false });
  const out = new Map<string, StageStatus>();
  for (const name of ws.graph.order) {
    if (!selected.has(name)) continue;
    const st = ws.pipeline.stages.get(name)!;
    const inputs = await observeInputs(st, ws.root, ws.hasher, ws.pipeline.params);
    const outs = await observeOuts(st, ws.root, ws.hasher);
    const reasons = staleReasons({ lock: ws.lock.resolve(st, ws.root, inputs, outs).entry, inputs, outs, alwaysChanged: st.alwaysChanged });
    for (const u of [...ws.graph.upstream(name)].sort()) {
      const us = out.get(u);
      if (us && !us.frozen && us.reasons.length) reasons.push({ kind: 'upstream-stale', stage: u });
    }
    out.set(name, { name, frozen: st.frozen, reasons });
  }
  saveCaches(ws);
  return [...out.values()];
}

export async function statusCommand(io: Io, args: { targets: string[]; json: boolean }): Promise<number> {
  const all = await computeStatus(io.cwd, args.targets);
  const stale = all.filter((s) => s.reasons.length && !s.frozen);
  if (args.json) {
    io.out(
      JSON.stringify(
        {
          upToDate: stale.length === 0,
          stages: Object.fromEntries(
            all.map((s) => [s.name, { stale: s.reasons.length > 0 && !s.frozen, frozen: s.frozen, reasons: s.reasons.map((r) => ({ ...r, text: describeReason(r) })) }]),
          ),
        },
        null,
        2,
      ),
    );
    return 0;
  }
  if (stale.length === 0) {
    io.out('Pipeline is up to date.');
    return 0;
  }
  for (const s of stale) {
    io.out(`${s.name}:`);
    for (const r of s.reasons) io.out(`    ${describeReason(r)}`);
  }
  return 0;
}
