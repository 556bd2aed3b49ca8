// The page shell: picks the page from the path, keeps each page's state in the query string.
const page = location.pathname.replace(/^\//, '') || 'experiments';
for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.page === page);

const modules = { experiments: './experiments.js', pipeline: './pipeline.js', models: './models.js' };
const main = document.getElementById('main');
if (!modules[page]) {
  main.innerHTML = '<p class="error">No such page.</p>';
} else {
  import(modules[page]).then((m) => m.render(main)).catch((e) => showError(e));
}

export function showError(e) {
  const s = document.getElementById('status');
  s.textContent = String(e && e.message ? e.message : e);
  s.className = 'error';
}
