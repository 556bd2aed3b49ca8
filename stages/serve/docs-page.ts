/**
 * GET /docs: the OpenAPI document as a page a person can read, with no script
 * and no external URL (the service runs where there may be no internet).
 */
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

interface Operation {
  readonly summary?: string;
  readonly responses?: Readonly<Record<string, { readonly description?: string }>>;
}

export function docsPage(doc: Record<string, unknown>): string {
  const info = doc.info as { title: string; version: string; description: string };
  const paths = doc.paths as Record<string, Record<string, Operation>>;
  const record = (doc.components as { schemas: Record<string, { required: readonly string[]; properties: Record<string, { type: readonly string[] }> }> })
    .schemas.LeadRecord!;
  const endpoints = Object.entries(paths).flatMap(([p, ops]) =>
    Object.entries(ops).map(([method, op]) => {
      const codes = Object.entries(op.responses ?? {})
        .map(([code, r]) => `<li><code>${code}</code> ${esc(r.description ?? '')}</li>`)
        .join('');
      return `<section><h3><code>${method.toUpperCase()} ${esc(p)}</code></h3><p>${esc(op.summary ?? '')}</p><ul>${codes}</ul></section>`;
    }),
  );
  const fields = Object.entries(record.properties)
    .map(([name, s]) => `<tr><td><code>${esc(name)}</code></td><td>${esc(s.type.join(' | '))}</td><td>${record.required.includes(name) ? 'yes' : ''}</td></tr>`)
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(info.title)} — API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:56rem;margin:2rem auto;padding:0 1rem;color:#222}code{background:#f3f3f3;padding:0 .25em}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .6em;text-align:left}section{border-top:1px solid #eee}</style></head>
<body><h1>${esc(info.title)} <small>${esc(info.version)}</small></h1><p>${esc(info.description)} The machine-readable document is at <a href="/openapi.json">/openapi.json</a>.</p>
<h2>Endpoints</h2>${endpoints.join('\n')}
<h2>A lead record</h2><p>Send one record, or a JSON list of up to 1,000. Unknown fields are refused by name.</p>
<table><thead><tr><th>field</th><th>type</th><th>required</th></tr></thead><tbody>${fields}</tbody></table>
</body></html>`;
}
