import type { SourceLocation } from './errors.js';
import type { ContainerSpec } from './container/spec.js';

/** What a stage runs: shell commands in order, or a TypeScript stage module. */
export type Command = { readonly kind: 'shell'; readonly commands: readonly string[] } | { readonly kind: 'module'; readonly module: string };

export interface DepDecl {
  /** Repo-relative POSIX path (may start with `../` for deps outside the repository). */
  readonly path: string;
  readonly glob: boolean;
  /** An `https://…` or `s3://…` URL, checked by the server's version id (ETag) rather than read. */
  readonly external?: boolean;
}

/** Params a stage reads from one file; `'all'` tracks every top-level key of the file. */
export interface ParamsDecl {
  readonly file: string;
  readonly keys: readonly string[] | 'all';
}

export type OutKind = 'out' | 'metric' | 'plot';

export interface OutDecl {
  readonly path: string;
  readonly kind: OutKind;
  readonly cache: boolean;
  readonly persist: boolean;
  readonly push: boolean;
  /** `remote: NAME`: the remote this output is pushed to and fetched from, instead of the default. */
  readonly remote?: string;
  /** Plot display properties (template, x, y, …) for `plots`: one entry per definition (DVC allows a list). */
  readonly plots?: readonly Readonly<Record<string, unknown>>[];
  /** Metrics only: which of the file's metrics are better lower or higher (globs over keys), overriding the built-in names. */
  readonly better?: { readonly lower?: readonly string[]; readonly higher?: readonly string[] };
}

export interface Stage {
  readonly name: string;
  /** The foreach/matrix group name this stage was expanded from. */
  readonly group?: string;
  readonly command: Command;
  /** Repo-relative working directory. */
  readonly wdir: string;
  readonly deps: readonly DepDecl[];
  readonly params: readonly ParamsDecl[];
  /**
   * Params only interpolated (`${train.lr}` in cmd), not declared. They are in `params` too;
   * DVC keeps them out of dvc.lock, so reading a dvc.lock must not call them new.
   */
  readonly trackedVars?: readonly { readonly file: string; readonly key: string }[];
  readonly outs: readonly OutDecl[];
  readonly frozen: boolean;
  readonly alwaysChanged: boolean;
  readonly desc?: string;
  /** Run inside this container instead of on the host. */
  readonly container?: ContainerSpec;
  readonly location: SourceLocation;
}

/** The text recorded as `cmd` in the lock, and part of the fingerprint. */
export function commandText(c: Command): string {
  return c.kind === 'shell' ? c.commands.join('\n') : `module ${c.module}`;
}
