import fs from 'node:fs';
import path from 'node:path';
import { describeReason, type Reason } from './staleness.js';
import { durationOf, failureOf, type Reporter, type StageResult } from './reporter.js';
import { describeFailure } from './failure.js';

/**
 * A small append-only log of what a `repro` is doing (.lockstep/events.jsonl),
 * so a viewer in another process (`lockstep ui`) can follow a run live. A run
 * starts a new file (written beside and renamed over the old one, so a reader
 * sees a new inode) at its first event; after that, one append to the file,
 * kept open for the run, per stage start and finish. A run where nothing runs writes nothing at all.
 */
const EVENTS_FILE = 'events.jsonl';

export type RunEvent =
  | { readonly kind: 'run'; readonly t: number; readonly pid: number }
  | { readonly kind: 'started'; readonly t: number; readonly stage: string; readonly why: string[] }
  | { readonly kind: 'finished'; readonly t: number; readonly stage: string; readonly state: string; readonly ms?: number; readonly error?: string }
  | { readonly kind: 'end'; readonly t: number; readonly ms: number };

export function eventsFile(stateDir: string): string {
  return path.join(stateDir, EVENTS_FILE);
}

/** Reports to `inner` and records starts and finishes in the event log. Never fails a run over the log. */
export function withEventLog(inner: Reporter, stateDir: string): Reporter {
  const file = eventsFile(stateDir);
  let open = false;
  let broken = false;
  // Kept open for the run (one write per event, not open/write/close); closed with the process.
  let fd: number | undefined;
  const write = (ev: RunEvent) => {
    if (broken) return;
    try {
      const line = JSON.stringify(ev) + '\n';
      if (open) {
        fs.writeSync(fd!, line);
        return;
      }
      const tmp = `${file}.${process.pid}.tmp`;
      // Truncated (a stale temp of a reused pid starts over); we are its only writer, so each write lands at the end.
      fd = fs.openSync(tmp, 'w');
      fs.writeSync(fd, JSON.stringify({ kind: 'run', t: Date.now(), pid: process.pid } satisfies RunEvent) + '\n' + line);
      fs.renameSync(tmp, file);
      open = true;
    } catch {
      broken = true;
    }
  };
  return {
    started(name: string, reasons: readonly Reason[]) {
      write({ kind: 'started', t: Date.now(), stage: name, why: reasons.map(describeReason) });
      inner.started(name, reasons);
    },
    line: (name, line, stream) => inner.line(name, line, stream),
    finished(r: StageResult) {
      // Up-to-date stages are news only in a run that does something.
      if (open || (r.state !== 'skipped' && r.state !== 'frozen')) {
        const ms = durationOf(r);
        const failure = failureOf(r);
        write({
          kind: 'finished',
          t: Date.now(),
          stage: r.name,
          state: r.state,
          ...(ms !== undefined ? { ms: Math.round(ms) } : {}),
          ...(failure ? { error: describeFailure(failure) } : {}),
        });
      }
      inner.finished(r);
    },
    summary(results, totalMs) {
      if (open) write({ kind: 'end', t: Date.now(), ms: Math.round(totalMs) });
      if (fd !== undefined) fs.closeSync(fd);
      fd = undefined;
      open = false;
      inner.summary(results, totalMs);
    },
  };
}

/** Events of the current log, for a reader that starts late. */
export function readEvents(stateDir: string): RunEvent[] {
  let text: string;
  try {
    text = fs.readFileSync(eventsFile(stateDir), 'utf8');
  } catch {
    return [];
  }
  return parseEventLines(text);
}

export function parseEventLines(text: string): RunEvent[] {
  const out: RunEvent[] = [];
  for (const l of text.split('\n')) {
    if (!l) continue;
    try {
      out.push(JSON.parse(l) as RunEvent);
    } catch {
      // a line being written right now: the next read has it whole
    }
  }
  return out;
}
