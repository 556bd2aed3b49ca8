import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { REPO } from '../helpers.js';

export const LEADS = path.join(REPO, 'bin', 'leads.js');

/** One valid lead as the service takes it (a raw_data.csv row's fields), with `over` changing or adding fields. */
export const leadRecord = (over: Record<string, unknown> = {}) => ({
  purchases: 3,
  time_spent: 110.5,
  n_visits: 7,
  customer_group: 6,
  onboarding: 'True',
  source: 'signup',
  ...over,
});

export interface Server {
  readonly url: string;
  readonly child: ChildProcess;
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `leads serve --port 0` as a real subprocess in `root`; resolves once it says where it listens. */
export function startServer(root: string, extra: string[] = []): Promise<Server> {
  const child = spawn(process.execPath, [LEADS, 'serve', '--port', '0', ...extra], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stdout!.resume(); // JSON request logs
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${err}`)), 20_000);
    child.stderr!.on('data', (d) => {
      err += d;
      const m = /on (http:\/\/[\d.:]+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1]!,
          child,
          stderr: () => err,
          stop: (signal = 'SIGTERM') =>
            new Promise((res) => {
              if (child.exitCode !== null) return res(child.exitCode);
              child.once('exit', (code) => res(code));
              child.kill(signal);
            }),
        });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`server exited with ${code}:\n${err}`), { code, stderr: err }));
    });
  });
}
