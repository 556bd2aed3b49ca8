import fs from 'node:fs';

/**
 * A file's stat signature: what every cache that remembers something about a
 * file (content hashes, md5s, parsed YAML, compiled modules) compares to decide
 * the file is unchanged. The rule is written here once.
 *
 * - size and mtime: what an editor or a stage changes;
 * - ctime: moves on every write and on utimes, so content rewritten in place
 *   with its old mtime put back (`cp -p`, `rsync -t`, `touch -r`) is still seen;
 * - inode: a file replaced by a rename (atomic saves, `git checkout`) is a new file.
 *
 * Times are milliseconds as doubles (nanosecond filesystems keep sub-µs digits).
 */
export type Sig = readonly [size: number, mtimeMs: number, ctimeMs: number, ino: number];

/** How many numbers a signature is: columnar stores keep SIG_WIDTH doubles per file. */
export const SIG_WIDTH = 4;

export function sigOf(st: fs.Stats): Sig {
  return [st.size, st.mtimeMs, st.ctimeMs, st.ino];
}

/** The signature of the file or folder at `abs` now (symlinks followed), or undefined when it cannot be stat-ed. */
export function sigOfPath(abs: string): Sig | undefined {
  try {
    return sigOf(fs.statSync(abs));
  } catch {
    return undefined; // gone, not a folder on the way, unreadable, a link loop
  }
}

/** Append `st`'s signature to a columnar store. */
export function appendSig(into: number[], st: fs.Stats): void {
  into.push(st.size, st.mtimeMs, st.ctimeMs, st.ino);
}

/** Whether the signature stored at `at` of `stored` (a Sig, or a columnar store) is `now`'s. */
export function sameSig(stored: ArrayLike<unknown>, at: number, now: ArrayLike<number>, nowAt = 0): boolean {
  return stored[at] === now[nowAt] && stored[at + 1] === now[nowAt + 1] && stored[at + 2] === now[nowAt + 2] && stored[at + 3] === now[nowAt + 3];
}

/**
 * Whether what was learned from a file may be remembered by its signature.
 * A file changed in the same timestamp tick as it was read could change again
 * without its signature moving (git's "racily clean" entries): Linux stamps
 * files from a clock that advances once per scheduler tick (up to 10 ms) even
 * on nanosecond filesystems, and FAT or some network mounts keep whole (or
 * two) seconds. So only a file whose last change is older than its tick by a
 * safe margin, measured from `readStart` (taken before the file was stat-ed
 * and read), is remembered; a fresher one is simply read again next time.
 */
export function settled(sig: ArrayLike<number>, readStart: number, at = 0): boolean {
  const mtime = sig[at + 1]!;
  const ctime = sig[at + 2]!;
  // The ctime tells the filesystem's granularity: an mtime may be whole seconds because it was set (tar, utimes).
  const window = ctime % 1000 === 0 ? COARSE_WINDOW_MS : FINE_WINDOW_MS;
  return readStart - Math.max(mtime, ctime) > window;
}

/** Whole-second timestamps (FAT: two seconds). */
const COARSE_WINDOW_MS = 2500;
/** Sub-second timestamps: several scheduler ticks. */
const FINE_WINDOW_MS = 100;
