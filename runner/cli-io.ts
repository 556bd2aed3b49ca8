/** The CLI's view of the outside world, so commands never touch process globals directly. */
export interface Io {
  readonly cwd: string;
  out(line: string): void;
  err(line: string): void;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

export function processIo(): Io {
  return {
    cwd: process.cwd(),
    out: (l) => void process.stdout.write(l + '\n'),
    err: (l) => void process.stderr.write(l + '\n'),
    stdout: process.stdout,
    stderr: process.stderr,
  };
}
