#!/usr/bin/env node
'use strict';
// CommonJS (bin/package.json): an ES module entry would start Node's ES module
// loader, a few ms of every run, for nothing a no-op needs.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

// No v8.setFlagsFromString('--max-semi-space-size=32') any more: set at run time it left the number of
// scavenges unchanged (7 on a 200-stage no-op, 8-9 on a 10,000-file status), and loading node:v8 pulls
// in Node's whole stream stack: 4-6 ms of CPU on every run.

const BUNDLE = path.join(__dirname, '..', 'dist', 'bundle', 'cli.cjs');
const CACHE = BUNDLE + '.code-cache';

/**
 * Compiling the bundle is most of a no-op run's own time. scripts/bundle.mjs records V8's code cache
 * for it (Node 20 has no compile cache for modules; a vm.Script takes one). The cache is used only
 * for the bundle it was made from: its header names the Node version and the bundle's size and
 * mtime, and V8 refuses it on its own checks too. A missing, stale or refused cache only costs
 * the compile. It is written only when the build asks (LOCKSTEP_WRITE_CODE_CACHE), so a read-only
 * install works as any other.
 */
function load() {
  const st = fs.statSync(BUNDLE);
  const source = fs.readFileSync(BUNDLE, 'latin1'); // ASCII (the build makes it so): far cheaper than UTF-8
  // Not the inode: a copy that keeps timestamps (cp -a, a container image's COPY) keeps its cache.
  const sig = `${process.version} ${st.size} ${st.mtimeMs}`;
  let cachedData;
  try {
    const buf = fs.readFileSync(CACHE);
    const n = buf.readUInt32LE(0);
    if (buf.subarray(4, 4 + n).toString() === sig) cachedData = buf.subarray(4 + n);
  } catch {
    // no cache: compile
  }
  // The bundle's import() of a package kept outside it (esbuild, vega, the S3 SDK) comes here, as `__lsi_`.
  const wrapper = '(function (exports, require, module, __filename, __dirname, __lsi_) { ' + source + '\n})';
  const script = new vm.Script(wrapper, { filename: BUNDLE, cachedData });
  const bundle = { exports: {} };
  // module.constructor is Node's CommonJS Module: its createRequire, without loading the public node:module.
  script.runInThisContext()(bundle.exports, module.constructor.createRequire(BUNDLE), bundle, BUNDLE, path.dirname(BUNDLE), (specifier) => import(specifier));
  if (process.env.LOCKSTEP_WRITE_CODE_CACHE) {
    process.on('exit', () => {
      const head = Buffer.from(sig);
      const len = Buffer.alloc(4);
      len.writeUInt32LE(head.length);
      // Whole or not at all: V8 checks a cache's header, not every byte of its code.
      fs.writeFileSync(`${CACHE}.${process.pid}`, Buffer.concat([len, head, script.createCachedData()]));
      fs.renameSync(`${CACHE}.${process.pid}`, CACHE);
    });
  }
  return bundle.exports;
}

load()
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
