/** One self-contained HTML page: inline CSS, SVG and images, no scripts, nothing fetched. */

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export interface Section {
  readonly title: string;
  /** Trusted SVG markup (produced by vega or by us). */
  readonly svg?: string;
  /** Images shown as they are, inline (data: URIs), each with its label. */
  readonly images?: readonly { readonly label: string; readonly src: string }[];
  /** Why this plot could not be drawn: shown in its panel, the other panels are unaffected. */
  readonly error?: string;
  readonly caption?: string;
}

function sectionHtml(s: Section): string {
  const parts: string[] = [];
  if (s.error) parts.push(`<p class="plot-error" role="alert">${escapeHtml(s.error)}</p>`);
  if (s.svg) parts.push(s.svg);
  for (const img of s.images ?? []) {
    parts.push(
      `<div class="plot-image"><img src="${escapeHtml(img.src)}" alt="${escapeHtml(img.label)}"><div class="label">${escapeHtml(img.label)}</div></div>`,
    );
  }
  const caption = s.caption ? `<figcaption>${escapeHtml(s.caption)}</figcaption>` : '';
  return `<section${s.error ? ' class="failed"' : ''}><h2>${escapeHtml(s.title)}</h2><figure>${parts.join('')}${caption}</figure></section>`;
}

export function htmlReport(title: string, subtitle: string, sections: readonly Section[]): string {
  const body = sections.map(sectionHtml).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1d2433; }
  header { border-bottom: 1px solid #d8dde6; margin-bottom: 1.5rem; }
  h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
  header p { color: #5b6475; margin: 0 0 1rem; }
  main { display: flex; flex-wrap: wrap; gap: 1.5rem; }
  section { border: 1px solid #e3e7ee; border-radius: 8px; padding: 1rem; background: #fff; max-width: 100%; overflow-x: auto; }
  h2 { font-size: 1rem; margin: 0 0 .5rem; font-family: ui-monospace, monospace; }
  figure { margin: 0; }
  figcaption { color: #5b6475; font-size: 12px; }
  section.failed { border-color: #e3a3a3; background: #fff7f7; }
  .plot-error { color: #a12626; font-family: ui-monospace, monospace; white-space: pre-wrap; margin: 0; }
  .plot-image { display: inline-block; margin: 0 .75rem .75rem 0; vertical-align: top; }
  .plot-image img { max-width: 420px; height: auto; display: block; border: 1px solid #eef0f4; }
  .plot-image .label { color: #5b6475; font-size: 12px; font-family: ui-monospace, monospace; }
</style>
</head>
<body>
<header><h1>${escapeHtml(title)}</h1><p>${escapeHtml(subtitle)}</p></header>
<main>
${body}
</main>
</body>
</html>
`;
}
