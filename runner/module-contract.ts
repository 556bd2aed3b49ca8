/**
 * The contract between the engine and a TypeScript stage module.
 *
 * A stage declared with `module: stages/train.ts` is compiled by the engine
 * (esbuild, cached under .lockstep/build/) and run in its own Node process.
 * The module exports a default function (or a named `run`) that receives a
 * StageContext. Throwing (or rejecting) fails the stage; the message is shown
 * to the user, and the stage's lock entry stays as it was.
 *
 * Stage logic should live in plain functions that the module calls, so it can
 * be unit-tested without the engine.
 */

/** A params value as it appears in params.yaml after parsing. */
export type ParamValue = string | number | boolean | null | ParamValue[] | { [key: string]: ParamValue };

export interface StageContext {
  /** The stage name as in pipeline.yaml (`train`, or `train@lr` for foreach). */
  readonly stage: string;
  /** Absolute path of the repository root (the folder holding pipeline.yaml). */
  readonly root: string;
  /** Absolute path the stage runs in (root joined with `wdir`). */
  readonly wdir: string;
  /**
   * The params the stage declared, resolved to their values, as a nested
   * object: declaring `train.lr.C` gives `params.train.lr.C`. Params from other
   * files than params.yaml are merged in the same way.
   */
  readonly params: { readonly [key: string]: ParamValue };
  /** Declared deps, as written (relative to wdir). */
  readonly deps: readonly string[];
  /** Declared outs (including metrics and plots), as written (relative to wdir). */
  readonly outs: readonly string[];
  /** Declared metrics files (relative to wdir). */
  readonly metrics: readonly string[];
  /** Declared plots files (relative to wdir). */
  readonly plots: readonly string[];
  /** Absolute path of a path relative to wdir; for an external dep (a URL), the local copy fetched for this run. */
  resolve(relPath: string): string;
  /** Log a line to the stage's output (stdout). */
  log(message: string): void;
  /**
   * The name the Lockstep cache gives these bytes (xxh64, as pipeline.lock records it), so a record the stage
   * writes can point at an artifact in the cache even after later runs replaced the workspace's file.
   */
  contentHash(bytes: Uint8Array | string): Promise<string>;
}

export type StageModule = (ctx: StageContext) => void | Promise<void>;
