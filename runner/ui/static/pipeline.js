import { getJson, readState, writeState, esc, duration, setStatus } from './common.js';

const DEFAULTS = { stage: '' };
let state;
let data;
/** Live states from the event log of the run in progress (or the last one): stage → {state, ms}. */
const live = new Map();

export async function render(main) {
  state = readState(DEFAULTS);
  main.innerHTML = `<div class="grid2"><div><div id="dag"></div></div>
    <div><div class="panel" id="run">No run in progress.</div><div class="panel" id="detail"></div>
    <div class="tablewrap" style="margin-top:16px"><table id="stages"></table></div></div></div>`;
  main.querySelector('#dag').addEventListener('click', (e) => {
    const g = e.target.closest('g.stage');
    if (g) choose(g.dataset.stage);
  });
  main.querySelector('#stages').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-stage]');
    if (tr) choose(tr.dataset.stage);
  });
  await load();
  follow();
}

/** When the states shown were computed: events of a finished run from before then are already in them. */
let loadedAt = 0;

async function load() {
  loadedAt = Date.now();
  data = await getJson('/api/pipeline');
  document.getElementById('dag').innerHTML = data.svg;
  paint();
  setStatus(data.statusError ? `status unknown: ${data.statusError}` : `${data.stages.length} stages`);
}

function choose(name) {
  state.stage = state.stage === name ? '' : name;
  writeState(state, DEFAULTS);
  paint();
}

function shownState(s) {
  const l = live.get(s.name);
  return l ? l.state : s.state;
}

function paint() {
  for (const g of document.querySelectorAll('#dag g.stage')) {
    const l = live.get(g.dataset.stage);
    if (l) g.dataset.live = l.state;
    else delete g.dataset.live;
    g.classList.toggle('chosen', g.dataset.stage === state.stage);
    const sub = g.querySelectorAll('text')[1];
    if (sub && l) sub.textContent = l.state === 'running' ? 'running…' : `${l.state}${l.ms !== undefined ? ` in ${duration(l.ms)}` : ''}`;
  }
  document.getElementById('stages').innerHTML = `<thead><tr><th>Stage</th><th>State</th><th>Last run</th><th>Why</th></tr></thead><tbody>${data.stages
    .map((s) => {
      const st = shownState(s);
      return `<tr data-stage="${esc(s.name)}"${s.name === state.stage ? ' class="selected"' : ''}><td>${esc(s.name)}</td><td><span class="badge ${esc(st.replace(/ /g, '-'))}" data-state="${esc(st)}">${esc(st)}</span></td><td class="num">${s.last ? `${esc(duration(s.last.ms))} <span class="muted">${esc(s.last.state)}</span>` : ''}</td><td class="muted">${esc(s.why[0] ?? '')}${s.why.length > 1 ? ` (+${s.why.length - 1})` : ''}</td></tr>`;
    })
    .join('')}</tbody>`;
  const s = data.stages.find((x) => x.name === state.stage);
  document.getElementById('detail').innerHTML = s
    ? `<h2>${esc(s.name)}</h2><p><span class="badge">${esc(shownState(s))}</span></p><p><code>${esc(s.command)}</code></p>
       ${s.why.length ? `<p>Stale because:</p><ul>${s.why.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : '<p class="muted">Nothing changed since it last ran.</p>'}
       ${s.last ? `<p class="muted">Last run: ${esc(duration(s.last.ms))}, ${esc(s.last.state)}, ${esc(s.last.at)}</p>` : ''}
       ${s.upstream.length ? `<p class="muted">After: ${s.upstream.map(esc).join(', ')}</p>` : ''}`
    : '<p class="muted">Choose a stage to see why it is stale.</p>';
}

/** Server-sent events from the repro event log: a stage goes running → done as it happens, in whichever terminal it runs. */
function follow() {
  const es = new EventSource('/api/events');
  const run = document.getElementById('run');
  let refresh;
  es.addEventListener('reset', () => {
    live.clear();
    paint();
  });
  es.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (!data.runInProgress && ev.t < loadedAt) return; // the replay of a run that is over
    if (ev.kind === 'run') {
      live.clear();
      run.textContent = `repro (pid ${ev.pid}) started ${new Date(ev.t).toLocaleTimeString()}`;
    } else if (ev.kind === 'started') {
      live.set(ev.stage, { state: 'running' });
      run.textContent = `running ${ev.stage}${ev.why.length ? ` (${ev.why[0]})` : ''}`;
    } else if (ev.kind === 'finished') {
      live.set(ev.stage, { state: ev.state, ms: ev.ms });
    } else if (ev.kind === 'end') {
      run.textContent = `last repro finished in ${duration(ev.ms)}`;
      // The run has changed pipeline.lock: recompute every stage's state, as `status` does.
      clearTimeout(refresh);
      refresh = setTimeout(async () => {
        live.clear();
        await load();
      }, 50);
    }
    paint();
  };
  es.onerror = () => setStatus('live updates paused (server unreachable); retrying…');
}
