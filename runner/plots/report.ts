/** One self-contained HTML page: inline CSS and SVG, no scripts, nothing fetched. */

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export interface Section {
  readonly title: string;
  /** Trusted SVG markup (produced by vega or by us). */
  readonly svg: string;
  readonly caption?: string;
}

export function htmlReport(title: string, subtitle: string, sections: readonly Section[]): string {
  const body = sections
    .map((s) => `<section><h2>${escapeHtml(s.title)}</h2><figure>${s.svg}${s.caption ? `<figcaption>${escapeHtml(s.caption)}</figcaption>` : ''}</figure></section>`)
    .join('\n');
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
