import crypto from 'node:crypto';
import os from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import type { StageFailure } from './failure.js';

/**
 * Shell stages run by long-lived `/bin/sh` processes ("lanes"), not started
 * by node one by one.
 *
 * Node's spawn forks the whole node process (page tables of ~100 MB) and
 * blocks the event loop until the child has exec'd: 5–15 ms per stage on a
 * busy machine, most of a trivial stage's cost. A lane is a small shell that
 * node starts once and that then runs one stage at a time: it forks itself
 * (cheap) and execs `/bin/sh -c CMD`, as node did, while we go on hashing and
 * saving. A lane is added only when every lane is busy, so there are at most
 * as many as stages ever ran at once (-j).
 *
 * What a lane is told, one line per stage:
 *
 *   ( cd DIR && export VARS && exec /bin/sh -c CMD ) </dev/null; printf '\nMARK %d\n' $?; printf '\nMARK\n' >&2
 *
 * - the stage writes straight into the lane's stdout and stderr pipes, so its
 *   output is read as it comes, as before; the end marker (a random token per
 *   lane, after a newline we take away again) says where its output ends, and
 *   carries its exit status;
 * - each lane is started detached (its own session and process group, as each
 *   stage had), so an interrupt ends a lane with the stage and all the stage
 *   started, and a stage's `kill 0` reaches only its own lane.
 *
 * Differences from a stage started by node: a status above 128 is reported as
 * the signal it means (a shell cannot tell `exit 137` from SIGKILL); output
 * that a background process writes after the stage's shell exited shows up in
 * the lane's next stage, instead of delaying the end of this one.
 */
/** What a stage's run came to: the same shape as the process runner's result. */
export type JobResult = { readonly ok: true } | { readonly ok: false; readonly failure: StageFailure };

type OnLine = (line: string, stream: 'stdout' | 'stderr') => void;

interface Job {
  readonly onLine: OnLine;
  readonly done: (r: JobResult) => void;
  /** The status from the stdout marker, once seen. */
  status?: number;
  /** Whether the stderr marker was seen. */
  errDone: boolean;
}

/** Single-quoted for sh: nothing inside is expanded. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The reason for a shell's exit status: 128+N is how a shell reports signal N. */
export function statusReason(status: number): JobResult {
  if (status === 0) return { ok: true };
  const signal = status > 128 ? Object.entries(os.constants.signals).find(([, n]) => n === status - 128)?.[0] : undefined;
  return { ok: false, failure: signal ? { kind: 'signal', signal } : { kind: 'exit-code', code: status } };
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Whether these variables can be set by a shell line (names sh accepts). */
export function canPass(vars: Readonly<Record<string, string>>): boolean {
  return Object.keys(vars).every((k) => VAR_NAME.test(k));
}

/**
 * Splits one of a lane's streams into the current job's lines, up to its end
 * marker. An empty line is held back until the next line: the one just before
 * the marker is the newline the lane added (so output without a final newline
 * still ends the line), not the stage's.
 */
class LineSplitter {
  private rest = '';
  private heldEmpty = 0;

  constructor(
    private readonly mark: string,
    private readonly emit: (line: string) => void,
    /** The marker line was seen; `tail` is what follows the marker on its line. */
    private readonly ended: (tail: string) => void,
  ) {}

  push(chunk: string): void {
    const lines = (this.rest + chunk).split('\n');
    this.rest = lines.pop()!;
    for (const l of lines) {
      if (l.startsWith(this.mark)) {
        // Every held empty line but the last (the lane's own newline) was the stage's.
        for (; this.heldEmpty > 1; this.heldEmpty--) this.emit('');
        this.heldEmpty = 0;
        this.ended(l.slice(this.mark.length));
      } else if (l === '') this.heldEmpty++;
      else {
        for (; this.heldEmpty > 0; this.heldEmpty--) this.emit('');
        this.emit(l);
      }
    }
  }
}

class Lane {
  readonly proc: ChildProcess;
  job: Job | undefined;
  /** Set once the shell has gone: a lane is never reused after that. */
  dead = false;
  private readonly mark = `\u0001lockstep-end-${crypto.randomBytes(8).toString('hex')}`;

  constructor(env: NodeJS.ProcessEnv, onExit: (lane: Lane) => void) {
    // Its own session and process group: a Ctrl-C on the terminal reaches lockstep, which ends the lanes itself.
    this.proc = spawn('/bin/sh', ['-s'], { env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.on('error', () => undefined); // reported through 'close'
    this.proc.stdin!.on('error', () => undefined);
    const out = new LineSplitter(
      this.mark,
      (l) => this.job?.onLine(l, 'stdout'),
      (tail) => {
        if (this.job) this.job.status = Number(tail.trim());
        this.settleIfDone();
      },
    );
    const err = new LineSplitter(
      this.mark,
      (l) => this.job?.onLine(l, 'stderr'),
      () => {
        if (this.job) this.job.errDone = true;
        this.settleIfDone();
      },
    );
    this.proc.stdout!.setEncoding('utf8');
    this.proc.stderr!.setEncoding('utf8');
    this.proc.stdout!.on('data', (c: string) => out.push(c));
    this.proc.stderr!.on('data', (c: string) => err.push(c));
    this.proc.on('close', (code, signal) => {
      this.dead = true;
      const job = this.job;
      this.job = undefined;
      // The lane was killed (an interrupt, or a stage's `kill 0`), with the stage in it.
      job?.done({ ok: false, failure: signal ? { kind: 'signal', signal } : { kind: 'error', message: `its shell ended unexpectedly (exit code ${code})` } });
      onExit(this);
    });
  }

  start(job: Job, cmd: string, cwd: string, vars: Readonly<Record<string, string>>): void {
    this.job = job;
    this.ref(true);
    const exports = Object.entries(vars).map(([n, v]) => `${n}=${shQuote(v)}`);
    const mark = shQuote(this.mark);
    this.proc.stdin!.write(
      `( cd ${shQuote(cwd)} && ${exports.length ? `export ${exports.join(' ')} && ` : ''}exec /bin/sh -c ${shQuote(cmd)} ) </dev/null; ` +
        `printf '\\n%s %d\\n' ${mark} "$?"; printf '\\n%s\\n' ${mark} >&2\n`,
    );
  }

  private settleIfDone(): void {
    const job = this.job;
    if (!job || job.status === undefined || !job.errDone) return;
    this.job = undefined;
    this.ref(false);
    job.done(statusReason(job.status));
  }

  /** An idle lane must not keep lockstep alive: it ends by itself when our end of its stdin closes with us. */
  private ref(on: boolean): void {
    const p = this.proc;
    for (const h of [p, p.stdin, p.stdout, p.stderr] as unknown as ({ ref(): void; unref(): void } | null)[]) {
      if (on) h?.ref();
      else h?.unref();
    }
  }
}

export class ShellSpawner {
  private readonly lanes: Lane[] = [];

  /** @param env the environment every stage starts from (the lanes' own) */
  constructor(private readonly env: NodeJS.ProcessEnv) {}

  /** Run `cmd` with `/bin/sh -c` in `cwd`, with `vars` added to the environment. */
  run(cmd: string, cwd: string, vars: Readonly<Record<string, string>>, onLine: OnLine): Promise<JobResult> {
    return new Promise<JobResult>((resolve) => {
      let lane = this.lanes.find((l) => !l.job && !l.dead);
      if (!lane) {
        lane = new Lane(this.env, (gone) => {
          const i = this.lanes.indexOf(gone);
          if (i >= 0) this.lanes.splice(i, 1);
        });
        this.lanes.push(lane);
      }
      lane.start({ onLine, done: resolve, errDone: false }, cmd, cwd, vars);
    });
  }

  /** Signal every busy lane's process group (the stage and all it started, with the lane); returns their pids. */
  signalAll(signal: NodeJS.Signals): number[] {
    const pids: number[] = [];
    for (const lane of this.lanes) {
      const pid = lane.proc.pid;
      if (!lane.job || pid === undefined) continue;
      pids.push(pid);
      try {
        process.kill(-pid, signal);
      } catch {
        // already gone
      }
    }
    return pids;
  }
}
