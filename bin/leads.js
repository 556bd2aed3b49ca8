#!/usr/bin/env node
import '../dist/stages/cli/leads.js';
