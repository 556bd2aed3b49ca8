import path from 'node:path';
import { readFileIfExists, writeFileAtomic } from './fs-util.js';

/** The last duration and outcome of each stage (.lockstep/durations.json), for reports such as `dag --html`. */
export type Durations = Record<string, { readonly ms: number; readonly state: string; readonly at: string }>;

const file = (stateDir: string) => path.join(stateDir, 'durations.json');

export function readDurations(stateDir: string): Durations {
  try {
    return JSON.parse(readFileIfExists(file(stateDir)) ?? '{}') as Durations;
  } catch {
    return {};
  }
}

export function recordDurations(stateDir: string, results: readonly { name: string; state: string; durationMs?: number }[]): void {
  const ran = results.filter((r) => r.durationMs !== undefined && (r.state === 'done' || r.state === 'restored' || r.state === 'failed'));
  if (!ran.length) return;
  const d = readDurations(stateDir);
  const at = new Date().toISOString();
  for (const r of ran) d[r.name] = { ms: Math.round(r.durationMs!), state: r.state, at };
  try {
    writeFileAtomic(file(stateDir), JSON.stringify(d), { durable: false });
  } catch {
    // a report nicety; never fail a run over it
  }
}
