import { escapeHtml } from './report.js';

export interface DagNode {
  readonly name: string;
  readonly state: 'up to date' | 'stale' | 'never run' | 'frozen';
  /** Why it is stale, one line. */
  readonly why?: string;
  readonly lastMs?: number;
}

const COLORS: Record<DagNode['state'], { fill: string; stroke: string }> = {
  'up to date': { fill: '#e7f6ec', stroke: '#2f8f4e' },
  stale: { fill: '#fff4e0', stroke: '#c7801a' },
  'never run': { fill: '#eef1f6', stroke: '#7a8499' },
  frozen: { fill: '#e8f1fb', stroke: '#3d7cc9' },
};

const W = 190;
const H = 58;
const GAP_X = 36;
const GAP_Y = 56;

function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/**
 * The stage graph as SVG: each stage on the layer of its longest upstream
 * path, layers top to bottom in run order, edges from producer to consumer.
 * `order` is topological, so every upstream node is placed before its users.
 */
export function dagSvg(order: readonly string[], upstream: (n: string) => readonly string[], nodes: ReadonlyMap<string, DagNode>): string {
  const layer = new Map<string, number>();
  for (const n of order) layer.set(n, Math.max(-1, ...upstream(n).map((u) => layer.get(u) ?? -1)) + 1);
  const rows: string[][] = [];
  for (const n of order) (rows[layer.get(n)!] ??= []).push(n);
  const widest = Math.max(...rows.map((r) => r.length), 1);
  const maxSkip = Math.max(0, ...order.flatMap((n) => upstream(n).map((u) => layer.get(n)! - layer.get(u)!)));
  const width = widest * (W + GAP_X) + GAP_X + (maxSkip > 1 ? 40 + 10 * maxSkip : 0);
  const height = rows.length * (H + GAP_Y);
  const pos = new Map<string, { x: number; y: number }>();
  rows.forEach((r, li) => {
    const offset = (widest * (W + GAP_X) + GAP_X - r.length * (W + GAP_X) + GAP_X) / 2;
    r.forEach((n, i) => pos.set(n, { x: offset + i * (W + GAP_X), y: GAP_Y / 2 + li * (H + GAP_Y) }));
  });
  const edges = order.flatMap((n) =>
    upstream(n).map((u) => {
      const a = pos.get(u)!;
      const b = pos.get(n)!;
      const skip = layer.get(n)! - layer.get(u)!;
      if (skip > 1) {
        // An edge over intermediate layers goes around them on the right, so it is not hidden behind their boxes.
        const [x1, y1, x2, y2] = [a.x + W, a.y + H / 2, b.x + W, b.y + H / 2];
        const bulge = Math.max(x1, x2) + 24 + 10 * skip;
        return `<path d="M${x1},${y1} C${bulge},${y1} ${bulge},${y2} ${x2 + 6},${y2}" fill="none" stroke="#8a93a6" stroke-width="1.5" marker-end="url(#arrow)"/>`;
      }
      const [x1, y1, x2, y2] = [a.x + W / 2, a.y + H, b.x + W / 2, b.y];
      const my = (y1 + y2) / 2;
      return `<path d="M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2 - 6}" fill="none" stroke="#8a93a6" stroke-width="1.5" marker-end="url(#arrow)"/>`;
    }),
  );
  const boxes = order.map((n) => {
    const p = pos.get(n)!;
    const node = nodes.get(n) ?? { name: n, state: 'never run' as const };
    const c = COLORS[node.state];
    const sub = [node.state, node.lastMs !== undefined ? `last ${duration(node.lastMs)}` : ''].filter(Boolean).join(' · ');
    const tip = [n, node.state, node.why ?? ''].filter(Boolean).join('\n');
    return `<g class="stage" data-stage="${escapeHtml(n)}" data-state="${node.state}"><title>${escapeHtml(tip)}</title>
<rect x="${p.x}" y="${p.y}" width="${W}" height="${H}" rx="8" fill="${c.fill}" stroke="${c.stroke}" stroke-width="1.5"/>
<text x="${p.x + W / 2}" y="${p.y + 24}" text-anchor="middle" font-family="ui-monospace, monospace" font-size="14" fill="#1d2433">${escapeHtml(n.length > 24 ? n.slice(0, 23) + '…' : n)}</text>
<text x="${p.x + W / 2}" y="${p.y + 43}" text-anchor="middle" font-family="sans-serif" font-size="11" fill="${c.stroke}">${escapeHtml(sub)}</text></g>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="stage graph">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8a93a6"/></marker></defs>
${edges.join('\n')}
${boxes.join('\n')}
</svg>`;
}
