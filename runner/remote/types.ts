/** A remote cache: a mirror of the local cache's keys (files/…, runs/…) somewhere else. */
export interface RemoteStore {
  /** The configured remote's name. */
  readonly name: string;
  /** For messages, e.g. "http://127.0.0.1:8080/cache" (never with secrets). */
  readonly description: string;
  /**
   * Which of these keys exist on the remote, each with its size in bytes when
   * the remote tells it (push compares it with the local object's: a cheap
   * test that the remote copy is not a wrong one).
   */
  existing(keys: readonly string[]): Promise<Map<string, number | undefined>>;
  /** All keys under a prefix, e.g. 'runs/' (recursive). */
  list(prefix: string): Promise<string[]>;
  /** Download key into destFile (the caller gives a temp path, verifies the content and renames). */
  download(key: string, destFile: string, progress?: (bytes: number) => void, signal?: AbortSignal): Promise<void>;
  /** Upload srcFile as key, never leaving a partial object visible under `key`. */
  upload(key: string, srcFile: string, progress?: (bytes: number) => void, signal?: AbortSignal): Promise<void>;
  remove(keys: readonly string[]): Promise<void>;
  close(): Promise<void>;
}
