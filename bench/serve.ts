import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { REPO, runCli, type Row } from './util.js';

/**
 * The prediction service under load: single-record POST /predict with 32
 * connections for 10 s from autocannon (this process), against `leads serve`
 * (its own process) on loopback, serving the model a real pipeline run registered.
 */
export async function benchServe(): Promise<Row[]> {
  const { copyRepo, setSource, SHARED_RAW } = await import('./pipeline.js');
  if (!fs.existsSync(SHARED_RAW)) return [{ name: 'serve: skipped (../shared/data/raw_data.csv absent)', value: 0, unit: '' }];
  const dir = copyRepo();
  try {
    setSource(dir);
    runCli(dir, ['repro']);
    const srv = spawn(process.execPath, [path.join(REPO, 'bin', 'leads.js'), 'serve', '--port', '0', '--quiet'], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let err = '';
        srv.stderr!.on('data', (d) => {
          err += d;
          const m = /on (http:\/\/[\d.:]+)/.exec(err);
          if (m) resolve(m[1]!);
        });
        srv.once('exit', () => reject(new Error(`leads serve exited:\n${err}`)));
      });
      const { default: autocannon } = await import('autocannon');
      const body = JSON.stringify({ purchases: 3, time_spent: 110.5, n_visits: 7, customer_group: 6, onboarding: 'True', source: 'signup' });
      const run = (duration: number) =>
        autocannon({ url: `${url}/predict`, method: 'POST', headers: { 'content-type': 'application/json' }, body, connections: 32, duration });
      await run(2); // warm-up: JIT and the model's first predictions
      const r = await run(10);
      const rps = r.requests.average;
      return [
        { name: 'POST /predict, one record, 32 connections, 10 s: requests/s', value: rps, unit: 'req/s', target: '≥ 3,000', ok: rps >= 3000 },
        { name: '  latency p50', value: r.latency.p50, unit: 'ms' },
        { name: '  latency p99', value: r.latency.p99, unit: 'ms', target: '< 20 ms', ok: r.latency.p99 < 20 },
        { name: '  non-2xx responses / errors / timeouts', value: r.non2xx + r.errors + r.timeouts, unit: '' },
      ];
    } finally {
      srv.kill();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
