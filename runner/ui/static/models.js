import { getJson, postJson, readState, writeState, esc, fmt, duration, setStatus, confirmDialog } from './common.js';

const DEFAULTS = { run: '', version: '' };
let state;

export async function render(main) {
  state = readState(DEFAULTS);
  main.innerHTML = `<h2>Model registry</h2><div class="tablewrap"><table id="registry"></table></div><div id="version-detail"></div>
    <h2>Training runs</h2><div class="tablewrap"><table id="runs"></table></div><div id="run-detail"></div>`;
  main.addEventListener('click', onClick);
  await Promise.all([loadRegistry(), loadRuns()]);
}

let versions = [];
let runs = [];

async function loadRegistry() {
  versions = (await getJson('/api/registry')).versions;
  const el = document.getElementById('registry');
  if (!versions.length) {
    el.innerHTML = '<tbody><tr><td class="muted">No registered models (registry/index.json). The pipeline\'s select stage registers one.</td></tr></tbody>';
    return paintVersion();
  }
  el.innerHTML = `<thead><tr><th>Version</th><th>Name</th><th>Family</th><th>Stage</th><th>Created</th><th>test F1 ↑</th><th>test accuracy ↑</th><th>Data checksum</th><th></th></tr></thead><tbody>${[
    ...versions,
  ]
    .reverse()
    .map(
      (
        v,
      ) => `<tr data-version="${v.version}"${String(v.version) === state.version ? ' class="selected"' : ''}><td><a href="#" data-show-version="${v.version}">v${v.version}</a></td><td>${esc(v.name)}</td><td>${esc(v.family)}</td>
        <td><span class="badge ${esc(v.stage)}">${esc(v.stage)}</span></td><td class="muted">${esc(v.created_at.slice(0, 16).replace('T', ' '))}</td>
        <td class="num">${esc(fmt(v.metrics?.test?.f1_weighted ?? v.metrics?.test?.f1))}</td><td class="num">${esc(fmt(v.metrics?.test?.accuracy))}</td><td><code>${esc(String(v.data_checksum).slice(0, 12))}</code></td>
        <td>${actions(v)}</td></tr>`,
    )
    .join('')}</tbody>`;
  paintVersion();
}

function actions(v) {
  const b = (to, label) => `<button data-version="${v.version}" data-to="${to}">${label}</button>`;
  return [
    v.stage === 'Staging' ? b('Production', 'Promote to Production') : '',
    v.stage === 'None' || v.stage === 'Archived' ? b('Staging', 'Move to Staging') : '',
    v.stage !== 'Archived' ? b('Archived', 'Archive') : '',
  ].join(' ');
}

function paintVersion() {
  const v = versions.find((x) => String(x.version) === state.version);
  document.getElementById('version-detail').innerHTML = v
    ? `<div class="panel"><h2>v${v.version}: ${esc(v.name)} (${esc(v.stage)})</h2><p>model md5 <code>${esc(v.model_md5)}</code> · data <code>${esc(v.data_checksum)}</code></p>
      <p>History: ${v.history.map((h) => `${esc(h.stage)} <span class="muted">${esc(h.at.slice(0, 19).replace('T', ' '))}</span>`).join(' → ')}</p>
      <p>Params: <code>${esc(JSON.stringify(v.params))}</code></p></div>`
    : '';
}

async function loadRuns() {
  runs = (await getJson('/api/runs')).runs;
  const el = document.getElementById('runs');
  if (!runs.length) {
    el.innerHTML = '<tbody><tr><td class="muted">No training runs recorded (mlruns/).</td></tr></tbody>';
    return paintRun();
  }
  el.innerHTML = `<thead><tr><th>Run</th><th>Model</th><th>Started</th><th>Duration</th><th>Git</th><th>Data checksum</th><th>CV score ↑</th><th>test F1 ↑</th><th>test accuracy ↑</th></tr></thead><tbody>${runs
    .map(
      (
        r,
      ) => `<tr data-run="${esc(r.id)}"${r.id === state.run ? ' class="selected"' : ''}><td><a href="#" data-show-run="${esc(r.id)}"><code>${esc(r.id)}</code></a></td><td>${esc(r.model)}</td>
        <td class="muted">${esc(r.started_at.slice(0, 16).replace('T', ' '))}</td><td class="num">${esc(duration(r.duration_ms))}</td>
        <td><code>${r.git ? esc(r.git.commit.slice(0, 8)) + (r.git.dirty ? '+' : '') : ''}</code></td><td><code>${esc(String(r.data_checksum).slice(0, 12))}</code></td>
        <td class="num">${esc(fmt(r.metrics?.cv_score))}</td><td class="num">${esc(fmt(r.metrics?.test?.f1_weighted ?? r.metrics?.test?.f1))}</td><td class="num">${esc(fmt(r.metrics?.test?.accuracy))}</td></tr>`,
    )
    .join('')}</tbody>`;
  paintRun();
}

function paintRun() {
  const r = runs.find((x) => x.id === state.run);
  document.getElementById('run-detail').innerHTML = r
    ? `<div class="panel"><h2>Run <code>${esc(r.id)}</code> · ${esc(r.model)} (${esc(r.family)})</h2>
      <p>git ${r.git ? `<code>${esc(r.git.commit)}</code>${r.git.dirty ? ' (with uncommitted changes)' : ''}` : 'none'} · data <code>${esc(r.data_checksum)}</code> · ${esc(duration(r.duration_ms))}</p>
      <p>Params: <code>${esc(JSON.stringify(r.params))}</code></p>
      <p>Metrics: <code>${esc(JSON.stringify(r.metrics))}</code></p>
      <p>Artifacts: ${
        Object.entries(r.artifacts ?? {})
          .map(([k, a]) => `<a href="/api/artifacts/${esc(a.hash)}" download="${esc(a.path.split('/').pop())}">${esc(k)}</a> <code>${esc(a.path)}</code>`)
          .join(', ') || 'none'
      }</p></div>`
    : '';
}

async function onClick(e) {
  const showRun = e.target.closest('[data-show-run]');
  const showVersion = e.target.closest('[data-show-version]');
  if (showRun || showVersion) {
    e.preventDefault();
    if (showRun) state.run = state.run === showRun.dataset.showRun ? '' : showRun.dataset.showRun;
    if (showVersion) state.version = state.version === showVersion.dataset.showVersion ? '' : showVersion.dataset.showVersion;
    writeState(state, DEFAULTS);
    for (const tr of document.querySelectorAll('tr[data-run]')) tr.classList.toggle('selected', tr.dataset.run === state.run);
    for (const tr of document.querySelectorAll('tr[data-version]')) tr.classList.toggle('selected', tr.dataset.version === state.version);
    paintRun();
    paintVersion();
    return;
  }
  const b = e.target.closest('button[data-to]');
  if (!b) return;
  const v = versions.find((x) => String(x.version) === b.dataset.version);
  const others = b.dataset.to === 'Production' || b.dataset.to === 'Staging' ? versions.filter((x) => x.stage === b.dataset.to) : [];
  const ok = await confirmDialog(
    `Move v${v.version} (${v.name}) from ${v.stage} to ${b.dataset.to}?${others.length ? ` v${others[0].version} leaves ${b.dataset.to} and is archived.` : ''}`,
  );
  if (!ok) return;
  try {
    await postJson(`/api/registry/${v.version}/transition`, { to: b.dataset.to });
    setStatus(`v${v.version} is now in ${b.dataset.to}`);
  } catch (err) {
    setStatus(err.message);
    document.getElementById('status').className = 'error';
  }
  await loadRegistry();
}
