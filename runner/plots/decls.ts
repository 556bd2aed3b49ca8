import type { Pipeline } from '../config/pipeline.js';
import { isPlainObject, posixJoin } from '../config/pipeline.js';

/** One file (or folder of files) a plot reads, with the columns it takes from it. */
interface PlotSource {
  /** Repo-relative path: a data file, an image, or a folder of them. */
  readonly path: string;
  /** The x column; undefined means DVC's default, the row index (`step`). */
  readonly x?: string;
  /** The y columns; undefined means DVC's default, the last column. */
  readonly y?: readonly string[];
}

/** A plot as the report shows it: one panel, drawn from one or more sources. */
export interface PlotDecl {
  /** The plot's id: its path, or the name of a top-level definition (`ROC`). */
  readonly id: string;
  readonly sources: readonly PlotSource[];
  /** template, title, x_label, y_label, header. */
  readonly props: Readonly<Record<string, unknown>>;
}

const asList = (v: unknown): string[] | undefined => (typeof v === 'string' ? [v] : Array.isArray(v) ? (v as string[]) : undefined);

/**
 * DVC's two ways to define a plot. `path: {x, y}`: the path is the data and x/y
 * are its columns. `name: {y: {file: col, …}, x: col | {file: col}}`: the name
 * only titles the plot and every file named under `y` is drawn in it.
 */
export function toDecl(id: string, props: Readonly<Record<string, unknown>>): PlotDecl {
  const { x, y, ...rest } = props;
  const xOf = (file: string) => (typeof x === 'string' ? x : isPlainObject(x) && typeof x[file] === 'string' ? (x[file] as string) : undefined);
  let sources: PlotSource[];
  if (isPlainObject(y)) {
    sources = Object.entries(y).map(([file, cols]) => ({ path: posixJoin('', file), ...opt('x', xOf(file)), ...opt('y', asList(cols)) }));
  } else if (y === undefined && isPlainObject(x)) {
    // Only x given per file: each file's y defaults to its last column.
    sources = Object.keys(x).map((file) => ({ path: posixJoin('', file), ...opt('x', xOf(file)) }));
  } else {
    sources = [{ path: posixJoin('', id), ...opt('x', xOf(id)), ...opt('y', asList(y)) }];
  }
  return { id, sources, props: rest };
}

function opt<K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [k]: v }) as { [P in K]?: V };
}

/** Plots declared under stages' `plots:` and in the top-level `plots:` section, in that order. */
export function declaredPlots(pipeline: Pipeline): PlotDecl[] {
  const out: PlotDecl[] = [];
  const add = (d: PlotDecl) => {
    // A second definition of the same id (a list of props) gets its own panel.
    let id = d.id;
    for (let n = 2; out.some((o) => o.id === id); n++) id = `${d.id} #${n}`;
    out.push({ ...d, id });
  };
  for (const s of pipeline.stages.values()) {
    for (const o of s.outs) if (o.kind === 'plot') for (const props of o.plots ?? [{}]) add(toDecl(o.path, props));
  }
  for (const p of pipeline.plots) if (!out.some((d) => d.id === p.path)) add(toDecl(p.path, p.props));
  return out;
}
