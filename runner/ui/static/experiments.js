import { getJson, readState, writeState, esc, fmt, setStatus, renderVegaLite } from './common.js';

const DEFAULTS = { sort: '', dir: '', q: '', status: '', cols: '', sel: '' };
const STATUSES = ['workspace', 'committed', 'queued', 'running', 'success', 'failed'];

let data;
let state;
const colKey = (c) => `${c.kind === 'param' ? 'p' : 'm'}:${c.id}`;

export async function render(main) {
  state = readState(DEFAULTS);
  const t0 = performance.now();
  data = await getJson('/api/experiments');
  main.innerHTML = `
    <div class="toolbar">
      <input type="search" id="filter" placeholder="filter: name, or test.f1 > 0.8" value="${esc(state.q)}" aria-label="filter">
      <select id="status-filter" aria-label="status">${['', ...STATUSES].map((s) => `<option value="${s}"${s === state.status ? ' selected' : ''}>${s || 'any status'}</option>`).join('')}</select>
      <details class="cols" id="cols"><summary>Columns</summary><div>
        <input type="search" id="col-filter" placeholder="find a column" aria-label="find a column">
        <button id="cols-default">defaults</button> <button id="cols-all">all</button> <button id="cols-none">none</button>
        <div id="col-list"></div></div></details>
      <button id="compare" class="primary" disabled>Compare</button>
      <span class="muted" id="count"></span>
    </div>
    <div class="tablewrap"><table id="exps"></table></div>
    <div id="comparison"></div>`;
  main.querySelector('#filter').addEventListener('input', (e) => update({ q: e.target.value }));
  main.querySelector('#status-filter').addEventListener('change', (e) => update({ status: e.target.value }));
  main.querySelector('#col-filter').addEventListener('input', renderColumnList);
  main.querySelector('#cols-default').addEventListener('click', () => update({ cols: '' }, true));
  main.querySelector('#cols-all').addEventListener('click', () => update({ cols: data.columns.map(colKey).join(',') }, true));
  main.querySelector('#cols-none').addEventListener('click', () => update({ cols: '-' }, true));
  main.querySelector('#compare').addEventListener('click', () => compare());
  main.querySelector('#exps').addEventListener('click', onTableClick);
  renderColumnList();
  renderTable();
  // Time from navigation to a usable table (the tests measure page load with it).
  performance.mark('experiments-table');
  setStatus(`${data.rows.length} rows in ${Math.round(performance.now() - t0)} ms`);
  if (selected().length >= 2) await compare();
}

function update(patch, columnsChanged) {
  Object.assign(state, patch);
  writeState(state, DEFAULTS);
  if (columnsChanged) renderColumnList();
  renderTable();
}

function chosenColumns() {
  if (state.cols === '-') return [];
  const want = state.cols ? new Set(state.cols.split(',')) : undefined;
  const cols = data.columns.filter((c) => (want ? want.has(colKey(c)) : c.default));
  // Short names: the first of a column's candidates that no other shown column also answers to.
  const taken = new Map();
  for (const c of cols) for (const l of c.labels) taken.set(l, (taken.get(l) ?? 0) + 1);
  for (const c of cols) c.label = c.labels.find((l) => taken.get(l) === 1) ?? c.id;
  return cols;
}

function selected() {
  return state.sel ? state.sel.split(',') : [];
}

function renderColumnList() {
  const chosen = new Set(chosenColumns().map(colKey));
  const f = document.getElementById('col-filter').value.toLowerCase();
  document.getElementById('col-list').innerHTML = data.columns
    .filter((c) => !f || c.id.toLowerCase().includes(f))
    .map(
      (c) =>
        `<label><input type="checkbox" data-col="${esc(colKey(c))}"${chosen.has(colKey(c)) ? ' checked' : ''}> ${c.kind === 'param' ? 'param' : 'metric'} <code>${esc(c.id)}</code></label>`,
    )
    .join('');
  for (const box of document.querySelectorAll('#col-list input')) {
    box.addEventListener('change', () => {
      const cur = new Set(chosenColumns().map(colKey));
      if (box.checked) cur.add(box.dataset.col);
      else cur.delete(box.dataset.col);
      // keep the table's column order: the server's
      update({
        cols:
          data.columns
            .map(colKey)
            .filter((k) => cur.has(k))
            .join(',') || '-',
      });
    });
  }
}

/** `test.f1 > 0.8` compares a column (by name or its end); anything else matches names and statuses. */
function rowFilter() {
  const q = state.q.trim();
  const m = /^(\S+?)\s*(>=|<=|!=|=|>|<)\s*(.+)$/.exec(q);
  if (m) {
    const col = data.columns.find((c) => c.id === m[1]) ?? chosenColumns().find((c) => c.label === m[1]) ?? data.columns.find((c) => c.id.endsWith(m[1]));
    if (col) {
      const want = Number.isNaN(Number(m[3])) ? m[3] : Number(m[3]);
      const cmp = { '>': (a, b) => a > b, '<': (a, b) => a < b, '>=': (a, b) => a >= b, '<=': (a, b) => a <= b, '=': (a, b) => a == b, '!=': (a, b) => a != b }[
        m[2]
      ];
      return (r) => {
        const v = (col.kind === 'param' ? r.params : r.metrics)[col.id];
        return v !== undefined && cmp(v, want);
      };
    }
  }
  const s = q.toLowerCase();
  return (r) => !s || r.name.toLowerCase().includes(s) || r.status.includes(s);
}

function valueOf(r, c) {
  return (c.kind === 'param' ? r.params : r.metrics)[c.id];
}

function sortedRows(rows) {
  if (!state.sort) return rows;
  const c = data.columns.find((x) => colKey(x) === state.sort);
  const get =
    state.sort === 'name'
      ? (r) => r.name
      : state.sort === 'status'
        ? (r) => r.status
        : state.sort === 'created'
          ? (r) => r.createdAt
          : c
            ? (r) => valueOf(r, c)
            : () => undefined;
  const dir = state.dir === 'asc' ? 1 : -1;
  return [...rows].sort((a, b) => {
    const x = get(a);
    const y = get(b);
    if (x === undefined || y === undefined) return x === y ? 0 : x === undefined ? 1 : -1;
    return (x < y ? -1 : x > y ? 1 : 0) * dir;
  });
}

/** Best per directed metric among the rows shown that succeeded; none when they all agree. */
function bestOf(rows, cols) {
  const best = new Map();
  for (const c of cols) {
    if (c.kind !== 'metric' || !c.direction) continue;
    const vals = rows
      .filter((r) => r.status === 'success')
      .map((r) => r.metrics[c.id])
      .filter((v) => typeof v === 'number');
    if (new Set(vals).size < 2) continue;
    best.set(c.id, c.direction === 'lower' ? Math.min(...vals) : Math.max(...vals));
  }
  return best;
}

function renderTable() {
  const cols = chosenColumns();
  const rows = sortedRows(data.rows.filter(rowFilter()).filter((r) => !state.status || r.status === state.status));
  const ws = data.rows.find((r) => r.kind === 'workspace');
  const best = bestOf(rows, cols);
  const sel = new Set(selected());
  const th = (key, label, cls, title) =>
    `<th class="sortable ${cls}${state.sort === key ? ` sorted ${state.dir === 'asc' ? 'asc' : ''}` : ''}" data-sort="${esc(key)}" title="${esc(title)}">${esc(label)}</th>`;
  const head = `<thead><tr><th></th>${th('name', 'Experiment', '', 'name')}${th('status', 'Status', '', 'status')}${th('created', 'Created', '', 'created')}${cols
    .map((c) =>
      th(
        colKey(c),
        c.label + (c.direction ? (c.direction === 'lower' ? ' ↓' : ' ↑') : ''),
        c.kind,
        `${c.kind} ${c.id}${c.direction ? ` (${c.direction} is better)` : ''}`,
      ),
    )
    .join('')}</tr></thead>`;
  const body = rows
    .map((r) => {
      const cells = cols
        .map((c) => {
          const v = valueOf(r, c);
          const cls = [typeof v === 'number' ? 'num' : ''];
          if (c.kind === 'param' && ws && r !== ws && ws.params[c.id] !== undefined && JSON.stringify(ws.params[c.id]) !== JSON.stringify(v))
            cls.push('differs');
          if (c.kind === 'metric' && best.has(c.id) && v === best.get(c.id) && r.status === 'success') cls.push('best');
          return `<td class="${cls.join(' ')}">${esc(fmt(v))}</td>`;
        })
        .join('');
      return `<tr class="kind-${r.kind}${sel.has(r.name) ? ' selected' : ''}" data-name="${esc(r.name)}"><td><input type="checkbox" aria-label="select ${esc(r.name)}"${sel.has(r.name) ? ' checked' : ''}></td><td>${esc(r.name)}</td><td><span class="badge ${esc(r.status)}">${esc(r.status)}</span></td><td class="muted">${esc((r.createdAt ?? '').slice(0, 16).replace('T', ' '))}</td>${cells}</tr>`;
    })
    .join('');
  document.getElementById('exps').innerHTML = head + `<tbody>${body}</tbody>`;
  document.getElementById('count').textContent = `${rows.length} of ${data.rows.length} rows · ${cols.length} of ${data.columns.length} columns`;
  document.getElementById('compare').disabled = sel.size < 2;
  document.getElementById('compare').textContent = sel.size >= 2 ? `Compare ${sel.size}` : 'Compare';
}

function onTableClick(e) {
  const h = e.target.closest('th[data-sort]');
  if (h) {
    const key = h.dataset.sort;
    const col = data.columns.find((c) => colKey(c) === key);
    // first click: best first for a directed metric, else descending for metrics and ascending for the rest
    const first = col?.direction === 'lower' || !col || col.kind === 'param' ? 'asc' : 'desc';
    update({ sort: key, dir: state.sort === key ? (state.dir === 'asc' ? 'desc' : 'asc') : first });
    return;
  }
  const tr = e.target.closest('tr[data-name]');
  if (tr && e.target.matches('input[type=checkbox]')) {
    const sel = new Set(selected());
    if (e.target.checked) sel.add(tr.dataset.name);
    else sel.delete(tr.dataset.name);
    update({ sel: [...sel].join(',') });
  }
}

async function compare() {
  const names = selected();
  const box = document.getElementById('comparison');
  if (names.length < 2) {
    box.innerHTML = '';
    return;
  }
  box.innerHTML = '<div class="panel muted">Comparing…</div>';
  const t0 = performance.now();
  let c;
  try {
    c = await getJson(`/api/compare?names=${encodeURIComponent(names.join(','))}`);
  } catch (e) {
    box.innerHTML = `<div class="panel error">${esc(e.message)}</div>`;
    return;
  }
  const diffTable = (d) => {
    const rows = [...d.params.map((x) => ['param', x]), ...d.metrics.map((x) => ['metric', x])];
    if (!rows.length) return `<p class="muted">${esc(d.a)} and ${esc(d.b)} have the same params and metrics.</p>`;
    return `<table class="diff"><thead><tr><th></th><th>Key</th><th>${esc(d.a)}</th><th>${esc(d.b)}</th><th>Change</th></tr></thead><tbody>${rows
      .map(
        ([k, x]) =>
          `<tr><td class="muted">${k}</td><td><code>${esc(x.path)}:${esc(x.key)}</code></td><td class="num">${esc(fmt(x.old))}</td><td class="num">${esc(fmt(x.new))}</td><td class="num">${x.change === undefined ? '' : (x.change > 0 ? '+' : '') + esc(fmt(x.change))}</td></tr>`,
      )
      .join('')}</tbody></table>`;
  };
  box.innerHTML = `<div class="panel"><h2>Comparing ${names.map(esc).join(', ')}</h2>
    ${c.diffs.map((d) => `<h3>${esc(d.a)} → ${esc(d.b)}</h3><div class="tablewrap">${diffTable(d)}</div>`).join('')}
    <h2>Plots</h2>${c.notes.length ? `<p class="muted">${c.notes.map(esc).join('<br>')}</p>` : ''}
    <div class="plots">${c.plots.map((p, i) => `<div class="plot"><h3>${esc(p.path)}</h3><div id="plot-${i}" data-path="${esc(p.path)}"></div></div>`).join('')}</div></div>`;
  await Promise.all(c.plots.map((p, i) => renderVegaLite(document.getElementById(`plot-${i}`), p.spec)));
  setStatus(`compared ${names.length} in ${Math.round(performance.now() - t0)} ms`);
}
