#!/usr/bin/env node
import v8 from 'node:v8';

// A short-lived CLI that stats thousands of files allocates fast; a larger young
// generation means far fewer scavenges (measured: about a fifth of a no-op run).
v8.setFlagsFromString('--max-semi-space-size=32');
const { main } = await import('../dist/bundle/cli.mjs');
process.exitCode = await main(process.argv.slice(2));
