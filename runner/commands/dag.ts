import { openWorkspace } from '../workspace.js';
import type { Io } from '../cli-io.js';

export function dagCommand(io: Io, args: { format: 'text' | 'mermaid' | 'dot'; targets: string[] }): number {
  const ws = openWorkspace(io.cwd, { checkDeps: false });
  const g = ws.graph;
  const names = args.targets.length ? g.closure(g.resolveTargets(args.targets, ws.root), 'up') : new Set(g.order);
  const order = g.order.filter((n) => names.has(n));
  const edges = order.flatMap((n) => [...g.upstream(n)].filter((u) => names.has(u)).sort().map((u) => [u, n] as const));
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
