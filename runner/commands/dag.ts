import fs from 'node:fs';
import path from 'node:path';
import { openWorkspace } from '../workspace.js';
import { computeStatus } from '../status.js';
import { readDurations } from '../durations.js';
import { describeReason } from '../staleness.js';
import { dagSvg, type DagNode } from '../plots/dag-svg.js';
import { htmlReport } from '../plots/report.js';
import type { Io } from '../cli-io.js';

export async function dagCommand(io: Io, args: { format: 'text' | 'mermaid' | 'dot' | 'html'; targets: string[]; out?: string }): Promise<number> {
  if (args.format === 'html') return dagHtml(io, args.targets, args.out);
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const g = ws.graph;
  const names = args.targets.length ? g.closure(g.resolveTargets(args.targets, ws.root), 'up') : new Set(g.order);
  const order = g.order.filter((n) => names.has(n));
  const edges = order.flatMap((n) =>
    [...g.upstream(n)]
      .filter((u) => names.has(u))
      .sort()
      .map((u) => [u, n] as const),
  );
  if (args.format === 'mermaid') {
    const id = new Map(order.map((n, i) => [n, `s${i}`]));
    io.out('flowchart TD');
    for (const n of order) io.out(`  ${id.get(n)}["${n.replace(/"/g, '#quot;')}"]`);
    for (const [a, b] of edges) io.out(`  ${id.get(a)} --> ${id.get(b)}`);
    return 0;
  }
  if (args.format === 'dot') {
    io.out('digraph pipeline {');
    io.out('  rankdir=TB;');
    for (const n of order) io.out(`  ${JSON.stringify(n)};`);
    for (const [a, b] of edges) io.out(`  ${JSON.stringify(a)} -> ${JSON.stringify(b)};`);
    io.out('}');
    return 0;
  }
  // Text: stages in run order, each with what it waits for.
  for (const n of order) {
    const ups = [...g.upstream(n)].filter((u) => names.has(u)).sort();
    io.out(ups.length ? `${n}  <-  ${ups.join(', ')}` : n);
  }
  return 0;
}

/** The graph with each stage's state (the same staleness `status` reports) and last duration, as an HTML page. */
async function dagHtml(io: Io, targets: string[], out: string | undefined): Promise<number> {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const g = ws.graph;
  const names = targets.length ? g.closure(g.resolveTargets(targets, ws.root), 'up') : new Set(g.order);
  const order = g.order.filter((n) => names.has(n));
  const status = new Map((await computeStatus(io.cwd, targets)).map((s) => [s.name, s]));
  const durations = readDurations(ws.stateDir);
  const nodes = new Map<string, DagNode>();
  for (const n of order) {
    const s = status.get(n);
    const state: DagNode['state'] = s?.frozen ? 'frozen' : !ws.lock.has(n) ? 'never run' : s && s.reasons.length ? 'stale' : 'up to date';
    nodes.set(n, { name: n, state, why: s?.reasons.map(describeReason).join('; '), lastMs: durations[n]?.ms });
  }
  const svg = dagSvg(order, (n) => [...g.upstream(n)].filter((u) => names.has(u)).sort(), nodes);
  const counts = ['up to date', 'stale', 'never run', 'frozen'].map((st) => `${[...nodes.values()].filter((x) => x.state === st).length} ${st}`).join(', ');
  const file = path.resolve(io.cwd, out ?? path.join('lockstep_plots', 'dag.html'));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, htmlReport('Lockstep pipeline', `${order.length} stages: ${counts}`, [{ title: 'stages', svg }]));
  io.out(`stage graph written to ${path.relative(io.cwd, file) || file}`);
  return 0;
}
