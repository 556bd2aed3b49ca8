import path from 'node:path';
import { openWorkspace, saveCaches, type Workspace } from './workspace.js';
import { findPointers } from './tracked.js';
import { Md5Memo, md5Path } from './hash/md5.js';
import { selectStages } from './executor.js';
import { observeInputs, observeOuts } from './observe.js';
import { staleReasons, type Reason } from './staleness.js';
import { decide, reasonsOf, type Decision, type Upstream } from './decide.js';

export interface StageStatus {
  readonly name: string;
  readonly frozen: boolean;
  /** Why it is stale (for a frozen stage: what changed, though repro leaves it); empty when up to date. */
  readonly reasons: readonly Reason[];
  /** What `repro --dry` decides for it: the same function, so the two cannot disagree. */
  readonly decision: Decision;
}

/** Data tracked by a `.dvc` pointer that is not as the pointer records it. */
export interface TrackedStatus {
  readonly file: string;
  readonly path: string;
  readonly state: 'not in workspace' | 'modified';
}

/** Pointers with our xxh64 are checked through the stat cache; a DVC repository's md5 ones by hashing with md5. */
export async function trackedStatus(ws: Workspace): Promise<TrackedStatus[]> {
  const out: TrackedStatus[] = [];
  const memo = Md5Memo.load(ws.stateDir);
  for (const p of findPointers(ws.root)) {
    for (const o of p.outs) {
      const abs = path.join(ws.root, o.path);
      let now: string | undefined;
      if (o.algo === 'md5') now = md5Path(abs, o.legacy, memo);
      else {
        const st = await ws.hasher.hashPath(abs);
        now = st.kind === 'missing' ? undefined : st.hash;
      }
      if (now === undefined) out.push({ file: p.file, path: o.path, state: 'not in workspace' });
      else if (now !== o.hash) out.push({ file: p.file, path: o.path, state: 'modified' });
    }
  }
  memo.save();
  return out;
}

/**
 * Staleness of every selected stage: a dry run's decisions, stage by stage in
 * order, each seeing what was decided upstream (a stage downstream of a stale
 * one is stale too; a dep a stale stage would make is not "missing").
 */
export async function computeStatus(cwd: string, targets: readonly string[], opened?: Workspace): Promise<StageStatus[]> {
  const ws = opened ?? openWorkspace(cwd);
  const selected = selectStages(ws, { targets, single: false, downstream: false });
  const out = new Map<string, StageStatus>();
  for (const name of ws.graph.order) {
    if (!selected.has(name)) continue;
    const st = ws.pipeline.stages.get(name)!;
    const inputs = await observeInputs(st, ws.root, ws.hasher, ws.pipeline.params);
    const outs = await observeOuts(st, ws.root, ws.hasher);
    const lock = ws.lock.resolve(st, ws.root, inputs, outs).entry;
    const reasons = staleReasons({ lock, inputs, outs, alwaysChanged: st.alwaysChanged });
    const upstream = [...ws.graph.upstream(name)]
      .filter((u) => selected.has(u))
      .map((u): Upstream =>
        out.get(u)!.decision.kind === 'would-run'
          ? { name: u, kind: 'pending', outs: ws.pipeline.stages.get(u)!.outs.map((o) => o.path) }
          : { name: u, kind: 'current' },
      );
    const decision = decide({ stage: st, reasons, lock, upstream, opts: { force: false, dry: true, allowMissing: false } });
    out.set(name, { name, frozen: st.frozen, reasons: reasonsOf(decision), decision });
  }
  saveCaches(ws);
  return [...out.values()];
}
