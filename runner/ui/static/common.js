/** Shared by the pages: fetching, query-string state, escaping, formatting, vega-lite rendering. */
export async function getJson(url, init) {
  const r = await fetch(url, init);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
  return body;
}

export function postJson(url, body) {
  return getJson(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** The page's state lives in the query string, so any view is a URL to share. */
export function readState(defaults) {
  const q = new URLSearchParams(location.search);
  const out = { ...defaults };
  for (const k of Object.keys(defaults)) if (q.has(k)) out[k] = q.get(k);
  return out;
}

export function writeState(state, defaults) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) if (v !== undefined && v !== '' && v !== defaults[k]) q.set(k, v);
  const s = q.toString();
  history.replaceState(null, '', s ? `${location.pathname}?${s}` : location.pathname);
}

export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

export function fmt(v) {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

export function duration(ms) {
  if (ms === undefined) return '';
  return ms < 1000 ? `${Math.round(ms)} ms` : ms < 60000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

export function setStatus(text) {
  const s = document.getElementById('status');
  s.textContent = text;
  s.className = '';
}

export function confirmDialog(text) {
  const d = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  d.returnValue = '';
  d.showModal();
  return new Promise((resolve) => d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true }));
}

let vegaLoaded;
/** vega and vega-lite (~770 KB) load on the first plot, not with every page. */
function loadVega() {
  const script = (src) =>
    new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src;
      s.onload = resolve;
      s.onerror = () => reject(new Error(`cannot load ${src}`));
      document.head.append(s);
    });
  return (vegaLoaded ??= script('/vendor/vega.min.js').then(() => script('/vendor/vega-lite.min.js')));
}

/** vega-lite through vega's own View: SVG, hover, our tooltip (no vega-embed needed). */
export async function renderVegaLite(el, spec) {
  await loadVega();
  const compiled = globalThis.vegaLite.compile(spec).spec;
  const view = new globalThis.vega.View(globalThis.vega.parse(compiled), { renderer: 'svg', container: el, hover: true });
  view.tooltip(tooltip);
  await view.runAsync();
  return view;
}

function tooltip(_handler, event, _item, value) {
  const t = document.getElementById('tooltip');
  if (value === undefined || value === null || value === '') {
    t.hidden = true;
    return;
  }
  const rows =
    typeof value === 'object'
      ? Object.entries(value)
          .filter(([k]) => !k.startsWith('_'))
          .map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(fmt(v))}</td></tr>`)
          .join('')
      : `<tr><td>${esc(value)}</td></tr>`;
  t.innerHTML = `<table>${rows}</table>`;
  t.hidden = false;
  t.style.left = `${event.clientX + 12}px`;
  t.style.top = `${event.clientY + 12}px`;
}
