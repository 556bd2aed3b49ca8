import { openWorkspace, saveCaches } from '../workspace.js';
import { computeStatus, trackedStatus } from '../status.js';
import { describeReason } from '../staleness.js';
import type { Io } from '../cli-io.js';

export async function statusCommand(io: Io, args: { targets: string[]; json: boolean }): Promise<number> {
  const ws = openWorkspace(io.cwd);
  const all = await computeStatus(io.cwd, args.targets, ws);
  const stale = all.filter((s) => s.decision.kind === 'would-run');
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
            all.map((s) => [
              s.name,
              { stale: s.decision.kind === 'would-run', frozen: s.frozen, reasons: s.reasons.map((r) => ({ ...r, text: describeReason(r) })) },
            ]),
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
    for (const t of tracked.filter((x) => x.file === file))
      io.out(`    ${t.state}: ${t.path}${t.state === 'not in workspace' ? ` (lockstep pull ${file})` : ` (lockstep add ${t.path} records it)`}`);
  }
  return 0;
}
