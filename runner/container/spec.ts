/**
 * What a stage's `container:` field says: which image (a name in the engine's
 * store, or a Containerfile Lockstep builds), how much network, which extra
 * environment variables and which resource limits. Paths are repository-relative.
 */
export type Network = 'none' | 'host' | 'bridge';
export const NETWORKS: readonly Network[] = ['none', 'host', 'bridge'];

interface ContainerBuild {
  /** The Containerfile (or Dockerfile), repository-relative. */
  readonly file: string;
  /** The build context folder, repository-relative (default: the Containerfile's folder). */
  readonly context: string;
  readonly args: Readonly<Record<string, string>>;
}

export type ContainerSpec = {
  readonly network: Network;
  readonly env: Readonly<Record<string, string>>;
  /** `--cpus`: how many cores (may be fractional). */
  readonly cpus?: number;
  /** `--memory`: bytes with an optional k/m/g suffix, as the engines take it. */
  readonly memory?: string;
} & ({ readonly image: string; readonly build?: undefined } | { readonly build: ContainerBuild; readonly image?: undefined });

export const CONTAINER_FIELDS = ['image', 'build', 'context', 'args', 'network', 'env', 'cpus', 'memory'];

/** What identifies a stage's environment in the lock and the fingerprint. */
export interface ImageIdentity {
  /** What the user wrote: the image name, or `build <Containerfile>`. */
  readonly image: string;
  /** The image ID (`sha256:…`) or, for a build, the hash of Containerfile + context + args; undefined: no such image. */
  readonly id: string | undefined;
}
