// Bundles the CLI into dist/bundle/: one file to compile at start-up instead of
// dozens of modules (yaml alone is ~60 files), then records V8's code cache for it.
//
// The CLI is one CommonJS file, cli.cjs: commands and the process machinery are
// imported with import(), which esbuild turns into lazily initialised parts of
// the same file, so a no-op run still evaluates only what it uses. CommonJS,
// not ESM, because Node 20 can hand V8 a code cache only for a script
// (vm.Script cachedData), not for an ES module: with it, a no-op run compiles
// almost nothing (bin/lockstep.js loads it). The module host is a separate
// process entry and stays an ES module.
//
// Two things a vm.Script needs: Node 20 cannot run import() inside one whose
// code came from a cache (the host options are lost), so the bundle's import()
// of packages kept outside it calls a function bin/lockstep.js hands in
// (`__lsi_`, as long as `import`, so the source map's columns still hold).
// And it is made pure ASCII (the few other characters, in comments, strings and
// a regular expression, become \u escapes): bin/lockstep.js then reads it as
// latin1, under 1 ms, where UTF-8 decoding of a file with any non-ASCII
// character took 6-20 ms.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';

fs.rmSync('dist/bundle', { recursive: true, force: true });

/**
 * commander requires node:child_process at load time only for git-style executable subcommands, which
 * we do not use; loading it costs every command a few ms of Node's own module compilation. Give
 * commander a stand-in that loads the real module on first use.
 */
const lazyChildProcess = {
  name: 'lazy-child-process-for-commander',
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      args.importer.includes('/node_modules/commander/') ? { path: 'lazy-child-process', namespace: 'lazy' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy' }, () => ({
      contents: "module.exports = new Proxy({}, { get: (_t, k) => require('node:child_process')[k] });",
      loader: 'js',
    }));
  },
};

/**
 * node:crypto (about 20 of Node's own modules to compile) and node:os are imported by modules a no-op
 * run loads (dvc.lock's md5, the run-cache's HMAC, the repository lock's host name) but needed
 * only when those act. Our modules get a stand-in with the same names that loads the real one on
 * first use. CommonJS output reads an import's members at use time, so this is invisible to them.
 */
const LAZY_BUILTINS = ['crypto', 'os'];
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: new RegExp(`^(node:)?(${LAZY_BUILTINS.join('|')})$`) }, (args) => {
      if (args.namespace === 'lazy-builtin') return { path: args.path, external: true }; // the stand-in's own require
      return args.importer.includes('/node_modules/') ? undefined : { path: args.path.replace(/^node:/, ''), namespace: 'lazy-builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, async (args) => {
      const names = Object.keys(await import(`node:${args.path}`)).filter((k) => k !== 'default');
      return {
        contents: `const load = () => require('node:${args.path}');\nconst lazy = {};\nfor (const k of ${JSON.stringify(names)}) Object.defineProperty(lazy, k, { enumerable: true, get: () => load()[k] });\nmodule.exports = lazy;\n`,
        loader: 'js',
      };
    });
  },
};

// Loaded only when needed and kept out: a native binary (esbuild), big SDKs and renderers.
const external = ['esbuild', 'fast-glob', 'fastify', '@aws-sdk/*', 'bullmq', 'ioredis', 'vega', 'vega-lite', 'csv-parse', 'csv-parse/*'];

await build({
  plugins: [lazyChildProcess, lazyBuiltins],
  entryPoints: { cli: 'runner/cli.ts' },
  outdir: 'dist/bundle',
  outExtension: { '.js': '.cjs' },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: true,
  external,
  // The few modules that find files beside themselves (the module host, the UI's static files) ask import.meta.url.
  // Asked for only when used: building the URL cost a no-op run a few ms.
  define: { 'import.meta.url': '__lockstepMeta.url' },
  // __lsb_: one ES-module view of each Node built-in, shared by all our modules (esbuild builds one per
  // importing module, copying every member of node:fs for each of dozens of modules a run loads).
  banner: {
    js: "const __lockstepMeta = { get url() { return require('node:url').pathToFileURL(__filename).href; } }; const __lsbViews = new Map(); const __lsb_ = (id) => { let m = __lsbViews.get(id); if (m === undefined) __lsbViews.set(id, (m = __toESM(require(id), 1))); return m; };",
  },
  logLevel: 'warning',
});

{
  const file = 'dist/bundle/cli.cjs';
  let n = 0;
  const text = fs
    .readFileSync(file, 'utf8')
    .replace(/(?<![\w$.])import\((?=")/g, () => (n++, '__lsi_('))
    .replace(/__toESM\(require\("(node:[\w/]+)"\), 1\)/g, '__lsb_("$1")')
    .replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const left = /(?<![\w$.])import\s*\(/.exec(text);
  if (left) throw new Error(`${file}: an import() bin/lockstep.js cannot serve: ${text.slice(left.index - 40, left.index + 40)}`);
  if (n === 0) throw new Error(`${file}: no import() of an external package found; has esbuild's output changed?`);
  fs.writeFileSync(file, text);
}

await build({
  entryPoints: { 'module-host': 'runner/module-host.ts' },
  outdir: 'dist/bundle',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  external,
  banner: { js: "import { createRequire as __lockstepRequire } from 'node:module'; const require = __lockstepRequire(import.meta.url);" },
  logLevel: 'warning',
});

/**
 * The code cache holds the bytecode of every function a run compiled, and V8 reads all of it on
 * every start. Record it from the runs users wait on most, a no-op repro and status, each adding to
 * what the one before left: a cache that also held a first run's code (the executor, the process
 * runner) was 900 KB against 540 KB and took a no-op run 1-5 ms longer to read, to save a run that
 * executes stages anyway a few ms of compiling. bin/lockstep.js uses it only for the very bundle it
 * was made from.
 */
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-code-cache-'));
try {
  fs.writeFileSync(
    path.join(tmp, 'pipeline.yaml'),
    'stages:\n  a:\n    cmd: cp in.txt a.txt\n    deps: [in.txt]\n    outs: [a.txt]\n  b:\n    cmd: cp a.txt b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n',
  );
  fs.writeFileSync(path.join(tmp, 'in.txt'), 'x\n');
  const bin = path.resolve('bin/lockstep.js');
  for (const [args, record] of [
    [['repro'], false],
    [['repro'], true],
    [['status'], true],
    [['repro'], true],
  ]) {
    const env = { ...process.env, ...(record ? { LOCKSTEP_WRITE_CODE_CACHE: '1' } : {}) };
    const r = spawnSync(process.execPath, [bin, ...args], { cwd: tmp, encoding: 'utf8', env });
    if (r.status !== 0) throw new Error(`recording the code cache: lockstep ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
