#!/usr/bin/env node
// bin/ is CommonJS (bin/package.json, for lockstep's start-up); the app is an ES module.
import('../dist/stages/cli/leads.js');
