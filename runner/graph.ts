import fs from 'node:fs';
import path from 'node:path';
import { UserError, didYouMean, type Diagnostic } from './errors.js';
import { isWithin } from './paths.js';
import type { Stage } from './stage.js';
import type { Pipeline } from './config/pipeline.js';
import { pointerFor } from './tracked.js';

interface Producer {
  readonly path: string;
  readonly stage: string;
}

/**
 * Every output, indexed so that those overlapping a path (the same path, inside it, or holding it:
 * isWithin either way) are found by looking up the path and its parent folders, not by comparing it
 * with every output: a scan made analysing a pipeline of n stages cost n² string comparisons, most
 * of a no-op run on a few hundred stages.
 */
export class OutputIndex {
  /** In the order added: the first overlapping one is the one an error names. */
  readonly all: Producer[] = [];
  private readonly at = new Map<string, number[]>();
  /** Folder → the outputs strictly inside it. */
  private readonly inside = new Map<string, number[]>();

  add(p: Producer): void {
    const i = this.all.length;
    this.all.push(p);
    push(this.at, p.path, i);
    for (const folder of parents(p.path)) push(this.inside, folder, i);
  }

  /** The outputs overlapping `q` (a path as the pipeline normalises it: no trailing '/'), in the order they were added. */
  overlapping(q: string): Producer[] {
    const ids = [...(this.at.get(q) ?? []), ...(this.inside.get(q) ?? [])];
    for (const folder of parents(q)) ids.push(...(this.at.get(folder) ?? []));
    return [...new Set(ids)].sort((a, b) => a - b).map((i) => this.all[i]!);
  }
}

function push(m: Map<string, number[]>, k: string, i: number): void {
  const xs = m.get(k);
  if (xs) xs.push(i);
  else m.set(k, [i]);
}

/** 'a/b/c' → 'a', 'a/b': the folders isWithin counts as holding it. */
function parents(p: string): string[] {
  const out: string[] = [];
  for (let i = p.indexOf('/'); i > 0; i = p.indexOf('/', i + 1)) out.push(p.slice(0, i));
  return out;
}

/**
 * The stage DAG: an edge A → B when B depends on a path A produces (the same
 * path, a file inside A's output directory, or a directory holding A's output).
 */
export class Graph {
  /** Stage names in a deterministic topological order. */
  readonly order: readonly string[];
  private readonly up: Map<string, Set<string>>;
  private readonly down: Map<string, Set<string>>;

  private constructor(
    readonly stages: ReadonlyMap<string, Stage>,
    up: Map<string, Set<string>>,
  ) {
    this.up = up;
    this.down = new Map([...stages.keys()].map((n) => [n, new Set<string>()]));
    for (const [n, ups] of up) for (const u of ups) this.down.get(u)!.add(n);
    this.order = topoOrder(stages, up);
  }

  /** Validate outputs and deps and build the DAG; all problems are reported together. */
  static analyze(p: Pipeline, opts: { checkDeps: boolean } = { checkDeps: true }): Graph {
    const diags: Diagnostic[] = [];
    const outputs = new OutputIndex();
    const producers = outputs.all;
    for (const st of p.stages.values()) {
      for (const o of st.outs) {
        const clash = outputs.overlapping(o.path)[0];
        if (clash) {
          const same = clash.path === o.path;
          diags.push({
            message: same
              ? `output '${o.path}' is produced by two stages: '${clash.stage}' and '${st.name}'`
              : `outputs overlap: '${clash.path}' of stage '${clash.stage}' and '${o.path}' of stage '${st.name}'`,
            location: st.location,
          });
        }
        outputs.add({ path: o.path, stage: st.name });
      }
    }
    const up = new Map<string, Set<string>>();
    for (const st of p.stages.values()) {
      const ups = new Set<string>();
      for (const d of st.deps) {
        if (d.external) continue; // a URL: no stage makes it, and it is checked when observed
        const found = d.glob
          ? producers.filter((x) => globBase(d.path) !== '' && (isWithin(globBase(d.path), x.path) || isWithin(x.path, globBase(d.path))))
          : outputs.overlapping(d.path);
        for (const f of found) if (f.stage !== st.name) ups.add(f.stage);
        if (found.some((f) => f.stage === st.name)) {
          diags.push({ message: `stage '${st.name}' depends on its own output '${d.path}'`, location: st.location });
        }
        // A dep no stage makes must be there now (one stat tells both whether it exists and what it is). A dep a stage
        // makes is checked when it is hashed, after that stage ran.
        if (opts.checkDeps && found.length === 0 && !d.glob) {
          const onDisk = fs.statSync(path.resolve(p.root, d.path), { throwIfNoEntry: false });
          const special = onDisk ? specialKind(onDisk) : undefined;
          if (special) {
            // Reading a FIFO blocks until a writer comes; a device may never end. Refused by name, before anything opens it.
            diags.push({ message: `dep '${d.path}' of stage '${st.name}' is ${special}; only files and directories can be deps`, location: st.location });
          } else if (!onDisk && !pointerFor(p.root, d.path)) {
            // Data tracked by a .dvc pointer but not pulled yet is a missing input (status says so), not a mistake.
            diags.push({
              message: `dep '${d.path}' of stage '${st.name}' does not exist and no stage produces it`,
              location: st.location,
              hint: didYouMean(
                d.path,
                producers.map((x) => x.path),
              ),
            });
          }
        }
      }
      up.set(st.name, ups);
    }
    if (diags.length) throw new UserError(diags);
    const cycle = findCycle(p.stages, up);
    if (cycle) {
      throw new UserError({
        message: `the pipeline has a cycle: ${cycle.join(' -> ')}`,
        location: p.stages.get(cycle[0]!)!.location,
      });
    }
    return new Graph(p.stages, up);
  }

  upstream(name: string): ReadonlySet<string> {
    return this.up.get(name) ?? new Set();
  }

  downstream(name: string): ReadonlySet<string> {
    return this.down.get(name) ?? new Set();
  }

  /** `names` plus everything they (transitively) depend on, or that depends on them. */
  closure(names: Iterable<string>, direction: 'up' | 'down'): Set<string> {
    const seen = new Set<string>();
    const stack = [...names];
    while (stack.length) {
      const n = stack.pop()!;
      if (seen.has(n)) continue;
      seen.add(n);
      for (const m of direction === 'up' ? this.upstream(n) : this.downstream(n)) stack.push(m);
    }
    return seen;
  }

  /** Resolve CLI targets: a stage name, a foreach group name, or a path a stage produces. */
  resolveTargets(targets: readonly string[], root: string): string[] {
    const out: string[] = [];
    for (const t of targets) {
      if (this.stages.has(t)) {
        out.push(t);
        continue;
      }
      const group = [...this.stages.values()].filter((s) => s.group === t).map((s) => s.name);
      if (group.length) {
        out.push(...group);
        continue;
      }
      // From a subfolder with its own pipeline file, a bare name means a stage of that file, as in DVC.
      const here = path.relative(root, process.cwd()).split(path.sep).join('/');
      const local =
        here && !here.startsWith('..')
          ? [...this.stages.keys()].find((n) => /^(.*)\/(pipeline|dvc)\.yaml:/.exec(n)?.[1] === here && n.endsWith(`:${t}`))
          : undefined;
      if (local) {
        out.push(local);
        continue;
      }
      const localGroup =
        here && !here.startsWith('..')
          ? [...this.stages.values()].filter(
              (s) => s.group !== undefined && /^(.*)\/(pipeline|dvc)\.yaml:/.exec(s.group)?.[1] === here && s.group.endsWith(`:${t}`),
            )
          : [];
      if (localGroup.length) {
        out.push(...localGroup.map((s) => s.name));
        continue;
      }
      // `dvc.yaml:train` for a stage of the root file; `sub/pipeline.yaml` for every stage of a pipeline file.
      const rootStage = /^(?:\.\/)?(?:pipeline|dvc)\.yaml:(.+)$/.exec(t)?.[1];
      if (rootStage !== undefined && (this.stages.has(rootStage) || [...this.stages.values()].some((s) => s.group === rootStage))) {
        out.push(...this.resolveTargets([rootStage], root));
        continue;
      }
      if (/(^|\/)(pipeline|dvc)\.yaml$/.test(t)) {
        const file = t.replace(/^\.\//, '');
        const inFile = [...this.stages.keys()].filter((n) => (/^(pipeline|dvc)\.yaml$/.test(file) ? !n.includes(':') : n.startsWith(`${file}:`)));
        if (inFile.length) {
          out.push(...inFile);
          continue;
        }
      }
      const rel = path.relative(root, path.resolve(t)).split(path.sep).join('/');
      const byOut = [...this.stages.values()].filter((s) => s.outs.some((o) => o.path === rel || o.path === t));
      if (byOut.length) {
        out.push(...byOut.map((s) => s.name));
        continue;
      }
      throw new UserError({
        message: `unknown stage or output '${t}'`,
        hint: didYouMean(t, this.stages.keys()) ?? `stages are: ${[...this.stages.keys()].join(', ')}`,
      });
    }
    return [...new Set(out)];
  }
}

function globBase(p: string): string {
  const parts = p.split('/');
  const i = parts.findIndex((s) => /[*?[\]{}]/.test(s));
  return parts.slice(0, i < 0 ? parts.length : i).join('/');
}

function findCycle(stages: ReadonlyMap<string, Stage>, up: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    state.set(n, 'visiting');
    stack.push(n);
    for (const u of [...(up.get(n) ?? [])].sort()) {
      if (state.get(u) === 'visiting') {
        // Print the cycle in execution order: producer first.
        const cyc = stack.slice(stack.indexOf(u));
        return [...cyc.reverse(), cyc[0]!];
      }
      if (!state.has(u)) {
        const c = visit(u);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of [...stages.keys()].sort()) {
    if (!state.has(n)) {
      const c = visit(n);
      if (c) return c;
    }
  }
  return undefined;
}

/** Kahn's algorithm, taking ready stages in declaration order so runs are reproducible. */
function topoOrder(stages: ReadonlyMap<string, Stage>, up: Map<string, Set<string>>): string[] {
  const names = [...stages.keys()];
  const index = new Map(names.map((n, i) => [n, i]));
  const remaining = new Map(names.map((n) => [n, up.get(n)?.size ?? 0]));
  const down = new Map(names.map((n) => [n, [] as string[]]));
  for (const [n, ups] of up) for (const u of ups) down.get(u)!.push(n);
  const ready = names.filter((n) => remaining.get(n) === 0);
  const order: string[] = [];
  while (ready.length) {
    ready.sort((a, b) => index.get(a)! - index.get(b)!);
    const n = ready.shift()!;
    order.push(n);
    for (const d of down.get(n)!) {
      const r = remaining.get(d)! - 1;
      remaining.set(d, r);
      if (r === 0) ready.push(d);
    }
  }
  return order;
}

/** What kind of special file this is, or undefined for a file or a directory. */
function specialKind(st: fs.Stats): string | undefined {
  if (st.isFile() || st.isDirectory()) return undefined;
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'a special file';
}
