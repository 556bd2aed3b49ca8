// Bundles the CLI into dist/bundle/: one file to compile at start-up instead of
// dozens of modules (yaml alone is ~60 files). Commands and the process
// machinery stay in lazily loaded chunks, so a no-op run loads only what it uses.
import fs from 'node:fs';
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
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) => (args.importer.includes('/node_modules/commander/') ? { path: 'lazy-child-process', namespace: 'lazy' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'lazy' }, () => ({
      contents: "module.exports = new Proxy({}, { get: (_t, k) => require('node:child_process')[k] });",
      loader: 'js',
    }));
  },
};

await build({
  plugins: [lazyChildProcess],
  entryPoints: { cli: 'runner/cli.ts', 'module-host': 'runner/module-host.ts' },
  outdir: 'dist/bundle',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  // Loaded only when needed and kept out: a native binary (esbuild), big SDKs and renderers. execa is bundled
  // into its own lazy chunk: resolving its ~40 modules from node_modules cost a shell stage ~50 ms.
  external: ['esbuild', 'fast-glob', 'fastify', '@aws-sdk/*', 'bullmq', 'ioredis', 'vega', 'vega-lite', 'csv-parse', 'csv-parse/*'],
  banner: { js: "import { createRequire as __lockstepRequire } from 'node:module'; const require = __lockstepRequire(import.meta.url);" },
  logLevel: 'warning',
});
