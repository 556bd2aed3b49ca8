import type { DriftReport, FeatureDrift } from '../lib/drift/report.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Side-by-side bars of the reference and current shares per bin. */
function bars(f: FeatureDrift): string {
  const share = (xs: readonly number[]) => {
    const t = xs.reduce((s, x) => s + x, 0) || 1;
    return xs.map((x) => x / t);
  };
  const r = share(f.reference_counts);
  const c = share(f.current_counts);
  const max = Math.max(...r, ...c, 1e-9);
  const bw = 14;
  const gap = 10;
  const h = 110;
  const w = f.bins.length * (2 * bw + gap) + gap;
  const cols = f.bins.map((label, i) => {
    const x = gap + i * (2 * bw + gap);
    const rh = (r[i]! / max) * h;
    const ch = (c[i]! / max) * h;
    return `<g><title>${esc(label)}: reference ${(r[i]! * 100).toFixed(1)}%, new ${(c[i]! * 100).toFixed(1)}%</title>
<rect x="${x}" y="${10 + h - rh}" width="${bw}" height="${rh}" fill="#8aa4c8"/><rect x="${x + bw}" y="${10 + h - ch}" width="${bw}" height="${ch}" fill="${f.drifted ? '#d9822b' : '#4f9a67'}"/>
<text x="${x + bw}" y="${h + 24}" font-size="9" text-anchor="middle" fill="#5b6475">${esc(label.length > 9 ? label.slice(0, 8) + '…' : label)}</text></g>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h + 32}" role="img" aria-label="${esc(f.feature)} distribution">${cols.join('')}</svg>`;
}

export function driftHtml(r: DriftReport, source: string): string {
  const rows = r.features
    .map((f) => `<tr class="${f.drifted ? 'drift' : ''}"><td>${esc(f.feature)}</td><td>${f.kind}</td><td>${f.test}</td><td>${f.statistic.toFixed(4)}</td><td>${f.p_value < 1e-4 ? f.p_value.toExponential(2) : f.p_value.toFixed(4)}</td><td>${f.psi.toFixed(4)}</td><td>${f.drifted ? 'drifted' : 'ok'}</td></tr>`)
    .join('\n');
  const charts = r.features.map((f) => `<section><h2>${esc(f.feature)}${f.drifted ? ' — drifted' : ''}</h2>${bars(f)}</section>`).join('\n');
  const verdict = r.failed
    ? `FAILED: ${r.drifted.length} of ${r.features.length} features drifted (${(r.drifted_share * 100).toFixed(0)}% > ${(r.params.max_drifted_share * 100).toFixed(0)}% allowed): ${r.drifted.join(', ')}`
    : `passed: ${r.drifted.length} of ${r.features.length} features drifted${r.drifted.length ? ` (${r.drifted.join(', ')})` : ''}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 64rem; padding: 0 1rem; color: #1d2433; }
table { border-collapse: collapse; margin: 1rem 0; } td, th { border-bottom: 1px solid #e3e7ee; padding: .3rem .8rem; text-align: left; }
tr.drift td { background: #fff4e0; } .verdict { font-weight: 600; } .failed { color: #b3261e; } .passed { color: #2f8f4e; }
main { display: flex; flex-wrap: wrap; gap: 1rem; } section { border: 1px solid #e3e7ee; border-radius: 8px; padding: .5rem 1rem; }
h2 { font-size: 1rem; font-family: ui-monospace, monospace; } .legend span { display: inline-block; width: .8rem; height: .8rem; margin: 0 .3rem 0 1rem; vertical-align: middle; }
</style></head><body>
<h1>Drift report</h1>
<p>New batch <code>${esc(source)}</code>: ${r.current_rows} rows, against ${r.reference_rows} training rows. PSI ≥ ${r.params.psi_threshold} or p &lt; ${r.params.p_value} marks a feature as drifted.</p>
<p class="verdict ${r.failed ? 'failed' : 'passed'}">${esc(verdict)}</p>
<table><thead><tr><th>feature</th><th>kind</th><th>test</th><th>statistic</th><th>p-value</th><th>PSI</th><th></th></tr></thead><tbody>
${rows}
</tbody></table>
<p class="legend"><span style="background:#8aa4c8"></span>training data<span style="background:#4f9a67"></span>new batch</p>
<main>${charts}</main>
</body></html>
`;
}
