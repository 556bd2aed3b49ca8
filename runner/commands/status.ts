import path from 'node:path';
import { openWorkspace, saveCaches, type Workspace } from '../workspace.js';
import { findPointers } from '../tracked.js';
import { Md5Memo, md5Path } from '../hash/md5.js';
import { selectStages } from '../executor.js';
import { observeInputs, observeOuts } from '../observe.js';
import { describeReason, staleReasons, type Reason } from '../staleness.js';
import type { Io } from '../cli-io.js';

export interface StageStatus {
  readonly name: string;
  readonly frozen: boolean;
  readonly reasons: readonly Reason[];
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

/** Staleness of every selected stage; a stage downstream of a stale one is stale too. */
export async function computeStatus(cwd: string, targets: readonly string[], opened?: Workspace): Promise<StageStatus[]> {
  const ws = opened ?? openWorkspace(cwd);
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
  const ws = openWorkspace(io.cwd);
  const all = await computeStatus(io.cwd, args.targets, ws);
  const stale = all.filter((s) => s.reasons.length && !s.frozen);
  // Tracked data is reported only for a whole-repository status, as DVC does.
  const tracked = args.targets.length ? [] : await trackedStatus(ws);
  saveCaches(ws);
  if (args.json) {
    io.out(
      JSON.stringify(
        {
          upToDate: stale.length === 0 && tracked.length === 0,
          tracked,
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
  if (stale.length === 0 && tracked.length === 0) {
    io.out('Pipeline is up to date.');
    return 0;
  }
  for (const s of stale) {
    io.out(`${s.name}:`);
    for (const r of s.reasons) io.out(`    ${describeReason(r)}`);
  }
  for (const file of [...new Set(tracked.map((t) => t.file))]) {
    io.out(`${file}:`);
    for (const t of tracked.filter((x) => x.file === file)) io.out(`    ${t.state}: ${t.path}${t.state === 'not in workspace' ? ` (lockstep pull ${file})` : ` (lockstep add ${t.path} records it)`}`);
  }
  return 0;
}
