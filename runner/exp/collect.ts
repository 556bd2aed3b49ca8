import fs from 'node:fs';
import path from 'node:path';
import { openWorkspace } from '../workspace.js';
import { metricsFilesOf, paramsFilesOf, readFlat } from '../commands/params-metrics.js';
import { WORKSPACE } from '../revision.js';
import type { ExpRecord } from './store.js';

/** What an experiment's run left behind in a workspace: params, metrics and lock entries. */
export function collectResult(dir: string): Pick<ExpRecord, 'paramsText' | 'params' | 'metrics' | 'metricsText' | 'lock'> {
  const ws = openWorkspace(dir, { checkDeps: false });
  const paramsFiles = paramsFilesOf(ws).filter((f) => fs.existsSync(path.join(ws.root, f)));
  const metricsFiles = metricsFilesOf(ws).filter((f) => fs.existsSync(path.join(ws.root, f)));
  const readText = (files: string[]) => Object.fromEntries(files.map((f) => [f, fs.readFileSync(path.join(ws.root, f), 'utf8')]));
  return {
    paramsText: readText(paramsFiles),
    params: readFlat(ws, paramsFiles, WORKSPACE, false),
    metrics: readFlat(ws, metricsFiles, WORKSPACE, true),
    metricsText: readText(metricsFiles),
    lock: Object.fromEntries(ws.lock.stages),
  };
}
