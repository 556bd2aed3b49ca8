/** The CLI's view of the outside world, so commands never touch process globals directly. */
export interface Io {
  readonly cwd: string;
  out(line: string): void;
  err(line: string): void;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly isTTY: boolean;
}

import fs from 'node:fs';

/**
 * Writes straight to the file descriptors: creating process.stdout loads the
 * whole stream stack, a measurable share of a no-op run's start-up.
 */
function fdStream(fd: number): NodeJS.WritableStream {
  return {
    write(chunk: string | Uint8Array): boolean {
      writeAll(fd, typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      return true;
    },
  } as NodeJS.WritableStream;
}

/** Descriptors whose reader has gone (`lockstep status | head`): further output is dropped, the command goes on. */
const closed = new Set<number>();

function writeAll(fd: number, buf: Uint8Array): void {
  let off = 0;
  while (off < buf.length && !closed.has(fd)) {
    try {
      off += fs.writeSync(fd, buf, off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') {
        closed.add(fd);
        return;
      }
      // A non-blocking pipe that is full: wait for the reader, then go on.
      if (code !== 'EAGAIN') throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}

export function processIo(): Io {
  const stdout = fdStream(1);
  const stderr = fdStream(2);
  return {
    cwd: process.cwd(),
    out: (l) => void stdout.write(l + '\n'),
    err: (l) => void stderr.write(l + '\n'),
    stdout,
    stderr,
    isTTY: fs.fstatSync(1).isCharacterDevice(),
  };
}
