import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { spawn, type ChildProcess } from 'node:child_process';

/**
 * Shell stages started by one long-lived `/bin/sh`, not by node.
 *
 * Node's spawn forks the whole node process (page tables of ~100 MB) and
 * blocks the event loop until the child has exec'd: 5–15 ms per stage on a
 * busy machine, most of a trivial stage's cost. A small shell forks in a
 * fraction of that and does it while we go on hashing and saving. The shell
 * is started once (on the first shell stage) and told, one line per stage,
 * what to run:
 *
 *   { ( cd DIR && export VARS && exec setsid /bin/sh -c CMD ) <NULL >OUT 2>ERR & echo "p K $!"; wait $!; echo "x K $?"; } &
 *
 * - `setsid` gives every stage its own session and process group, as node's
 *   `detached` did, so an interrupt ends a stage with all it started, and a
 *   stage's `kill 0` reaches only itself;
 * - output goes to two files under the state folder's tmp/ (named with our pid,
 *   swept like other temp files); they are read as they grow (every
 *   POLL_MS) and to the end once the stage has exited, then removed;
 * - "p K PID" tells us whom to signal, "x K STATUS" that it is over.
 *
 * Differences from a stage started by node: a status above 128 is reported as
 * the signal it means (the shell cannot tell `exit 137` from SIGKILL); output
 * written by a background process after the stage's shell exited is not shown.
 * Where `setsid` is not available (macOS) `available()` says no and stages are
 * spawned by node as before.
 */
const POLL_MS = 100;

/** Output files are `<state>/tmp/sh-<pid>-<n>.out|err`: the pid tells a later run whether they are litter. */
export const SH_TEMP_PREFIX = 'sh-';

export type JobResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

interface Job {
  readonly out: string;
  readonly err: string;
  readonly streams: Tail[];
  pid?: number;
  /** A signal sent before the pid was known: delivered when it is. */
  pendingSignal?: NodeJS.Signals;
  timer?: NodeJS.Timeout;
  readonly done: (r: JobResult) => void;
}

/** Reads a file from where it was last read, splitting it into lines. */
class Tail {
  private fd: number | undefined;
  private pos = 0;
  private rest = '';
  private readonly decoder = new StringDecoder('utf8');
  private readonly buf = Buffer.allocUnsafe(64 * 1024);

  constructor(
    private readonly file: string,
    private readonly emit: (line: string) => void,
  ) {}

  /** Emit the whole lines written so far. */
  poll(): void {
    if (this.fd === undefined) {
      try {
        this.fd = fs.openSync(this.file, 'r');
      } catch {
        return; // not created yet
      }
    }
    for (;;) {
      const n = fs.readSync(this.fd, this.buf, 0, this.buf.length, this.pos);
      if (n <= 0) break;
      this.pos += n;
      const lines = (this.rest + this.decoder.write(this.buf.subarray(0, n))).split('\n');
      this.rest = lines.pop()!;
      for (const l of lines) this.emit(l);
    }
  }

  /** Everything left, the last line even without its newline; then the file is closed and removed. */
  finish(): void {
    try {
      // Most stages print nothing: one stat instead of open, read and close.
      if (this.fd !== undefined || fs.statSync(this.file).size > 0) this.poll();
    } catch {
      // absent or unreadable: nothing more to show
    }
    const last = this.rest + this.decoder.end();
    this.rest = '';
    if (last) this.emit(last);
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    try {
      fs.unlinkSync(this.file);
    } catch {
      // never created
    }
  }
}

/** Single-quoted for sh: nothing inside is expanded. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The reason for a shell's exit status: 128+N is how a shell reports signal N. */
export function statusReason(status: number): JobResult {
  if (status === 0) return { ok: true };
  const signal = status > 128 ? Object.entries(os.constants.signals).find(([, n]) => n === status - 128)?.[0] : undefined;
  return { ok: false, reason: signal ? `killed by ${signal}` : `exit code ${status}` };
}

let setsidPath: string | null | undefined;

/** Whether stages can be started this way here (a POSIX sh and util-linux `setsid`). */
export function available(): boolean {
  if (setsidPath === undefined) {
    setsidPath = null;
    if (process.platform !== 'win32' && fs.existsSync('/bin/sh')) {
      for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
        const f = path.join(dir || '.', 'setsid');
        try {
          fs.accessSync(f, fs.constants.X_OK);
          setsidPath = f;
          break;
        } catch {
          // not here
        }
      }
    }
  }
  return setsidPath !== null;
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class ShellSpawner {
  private sh: ChildProcess | undefined;
  private readonly jobs = new Map<number, Job>();
  private next = 0;
  /** Folders for output files known to exist. */
  private readonly made = new Set<string>();

  /** @param env the environment every stage starts from (the shell's own) */
  constructor(private readonly env: NodeJS.ProcessEnv) {}

  /** Whether these variables can be passed on a shell line (names sh accepts). */
  static canPass(vars: Readonly<Record<string, string>>): boolean {
    return Object.keys(vars).every((k) => VAR_NAME.test(k));
  }

  /**
   * Run `cmd` with `/bin/sh -c` in `cwd` with `vars` added to the environment;
   * its output files go to `tmpDir` (per call: one process may run stages of
   * several workspaces, such as experiments' temporary copies).
   */
  run(cmd: string, cwd: string, vars: Readonly<Record<string, string>>, tmpDir: string, onLine: (line: string, stream: 'stdout' | 'stderr') => void): Promise<JobResult> {
    const sh = this.shell();
    const k = this.next++;
    if (!this.made.has(tmpDir)) {
      fs.mkdirSync(tmpDir, { recursive: true });
      this.made.add(tmpDir);
    }
    const base = path.join(tmpDir, `${SH_TEMP_PREFIX}${process.pid}-${k}`);
    const out = `${base}.out`;
    const err = `${base}.err`;
    const exports = Object.entries(vars).map(([n, v]) => `${n}=${shQuote(v)}`);
    const line =
      `{ ( cd ${shQuote(cwd)} && ${exports.length ? `export ${exports.join(' ')} && ` : ''}exec ${shQuote(setsidPath!)} /bin/sh -c ${shQuote(cmd)} )` +
      ` </dev/null >${shQuote(out)} 2>${shQuote(err)} & echo "p ${k} $!"; wait $!; echo "x ${k} $?"; } &\njobs >/dev/null\n`;
    return new Promise<JobResult>((resolve) => {
      const streams = [new Tail(out, (l) => onLine(l, 'stdout')), new Tail(err, (l) => onLine(l, 'stderr'))];
      const job: Job = { out, err, streams, done: resolve };
      // Most trivial stages are over before the first poll; longer ones show their output as it comes.
      job.timer = setInterval(() => {
        for (const s of streams) {
          try {
            s.poll();
          } catch {
            // read again at the end
          }
        }
      }, POLL_MS);
      this.jobs.set(k, job);
      this.ref(true);
      sh.stdin!.write(line);
    });
  }

  /** Signal every running stage's process group; returns their pids (for a later SIGKILL). */
  signalAll(signal: NodeJS.Signals): number[] {
    const pids: number[] = [];
    for (const job of this.jobs.values()) {
      if (job.pid === undefined) job.pendingSignal = signal;
      else {
        pids.push(job.pid);
        signalGroup(job.pid, signal);
      }
    }
    return pids;
  }

  private shell(): ChildProcess {
    if (this.sh) return this.sh;
    // Its own session, as the stages had: a Ctrl-C on the terminal reaches lockstep, which ends the stages itself.
    const sh = spawn('/bin/sh', ['-s'], { env: this.env, detached: true, stdio: ['pipe', 'pipe', 'ignore'] });
    this.sh = sh;
    sh.on('error', () => undefined); // reported through 'close'
    sh.stdin!.on('error', () => undefined);
    let rest = '';
    sh.stdout!.setEncoding('utf8');
    sh.stdout!.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop()!;
      for (const l of lines) this.onReport(l);
    });
    // The shell's stdout is also the stages' wrappers' (they report through it): it closes once all are gone.
    sh.stdout!.on('close', () => {
      if (this.sh === sh) this.sh = undefined;
      for (const [k, job] of this.jobs) this.settle(k, job, { ok: false, reason: 'its shell ended unexpectedly' });
    });
    return sh;
  }

  private onReport(line: string): void {
    const m = /^([px]) (\d+) (\d+)$/.exec(line);
    if (!m) return;
    const k = Number(m[2]);
    const job = this.jobs.get(k);
    if (!job) return;
    const n = Number(m[3]);
    if (m[1] === 'p') {
      job.pid = n;
      if (job.pendingSignal) signalGroup(n, job.pendingSignal);
      return;
    }
    this.settle(k, job, statusReason(n));
  }

  private settle(k: number, job: Job, r: JobResult): void {
    clearInterval(job.timer);
    this.jobs.delete(k);
    for (const s of job.streams) s.finish();
    if (this.jobs.size === 0) this.ref(false);
    job.done(r);
  }

  /** An idle shell must not keep lockstep alive: it ends by itself when our end of its stdin closes with us. */
  private ref(on: boolean): void {
    const sh = this.sh;
    if (!sh) return;
    const handles = [sh, sh.stdin, sh.stdout] as unknown as { ref(): void; unref(): void }[];
    for (const h of handles) {
      if (on) h?.ref?.();
      else h?.unref?.();
    }
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}
