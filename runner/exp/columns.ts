import { canonicalJson } from '../config/params.js';
import { UserError } from '../errors.js';
import { flatten } from '../revision.js';
import { metricDirection, type Direction } from './direction.js';
import type { ExpRecord } from './store.js';

/**
 * The experiments table as data: rows (experiments, or any other thing with
 * params and metrics), the columns worth showing, and the best value of each
 * metric. Shared by `exp show` and the web UI, so both agree on what differs
 * and what is best.
 */
type Flat = Record<string, unknown>;
type PerFile = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

interface TableRow {
  readonly name: string;
  readonly status: string;
  readonly createdAt?: string;
  /** Column id → value. */
  readonly params: Flat;
  readonly metrics: Flat;
}

export interface ColumnMeta {
  readonly kind: 'param' | 'metric';
  /** `file:key` when the rows have more than one file of this kind, else `key`. Unique within its kind. */
  readonly id: string;
  readonly file: string;
  readonly key: string;
}

export interface Column extends ColumnMeta {
  /** The shortest trailing part of the id that no other shown column shares. */
  label: string;
  readonly direction?: Direction;
  /** Same value in every row that has one (and at least two rows have one). */
  readonly constant: boolean;
  /** Row indexes holding the best value: only for directed, non-constant metrics, among succeeded rows. */
  readonly best: ReadonlySet<number>;
}

export interface Rows {
  readonly rows: TableRow[];
  readonly params: ColumnMeta[];
  readonly metrics: ColumnMeta[];
}

/** An experiment's params: as recorded, or for one not run yet, the workspace's with its overrides on top. */
export function paramsOfRecord(r: ExpRecord, workspaceParams: PerFile): PerFile {
  if (r.params) return r.params;
  const out: Record<string, Record<string, unknown>> = {};
  for (const [f, kv] of Object.entries(workspaceParams)) out[f] = { ...kv };
  for (const [f, kv] of Object.entries(r.overrides)) for (const [k, v] of Object.entries(kv)) Object.assign((out[f] ??= {}), flatten(v, k));
  return out;
}

/**
 * Rows for experiment records. A queued experiment has no recorded params yet:
 * it shows the workspace's params with its own overrides on top, the values it will run with.
 */
export function rowsOf(
  recs: readonly ExpRecord[],
  workspaceParams: PerFile,
  extra: readonly { name: string; status: string; params: PerFile; metrics: PerFile }[] = [],
): Rows {
  const paramsOf = (r: ExpRecord) => paramsOfRecord(r, workspaceParams);
  const sources: { name: string; status: string; createdAt?: string; params: PerFile; metrics: PerFile }[] = [
    ...extra.map((e) => ({ name: e.name, status: e.status, params: e.params, metrics: e.metrics })),
    ...recs.map((r) => ({ name: r.name, status: r.status, createdAt: r.createdAt, params: paramsOf(r), metrics: r.metrics ?? {} })),
  ];
  const paramCols = new Map<string, ColumnMeta>();
  const metricCols = new Map<string, ColumnMeta>();
  const multi = (which: 'params' | 'metrics') => new Set(sources.flatMap((s) => Object.keys(s[which]))).size > 1;
  const multiParams = multi('params');
  const multiMetrics = multi('metrics');
  const keyed = (src: PerFile, kind: 'param' | 'metric', many: boolean, cols: Map<string, ColumnMeta>): Flat => {
    const out: Flat = {};
    for (const [file, kv] of Object.entries(src)) {
      for (const [key, v] of Object.entries(kv)) {
        const id = many ? `${file}:${key}` : key;
        if (!cols.has(id)) cols.set(id, { kind, id, file, key });
        out[id] = v;
      }
    }
    return out;
  };
  const rows: TableRow[] = sources.map((s) => ({
    name: s.name,
    status: s.status,
    ...(s.createdAt ? { createdAt: s.createdAt } : {}),
    params: keyed(s.params, 'param', multiParams, paramCols),
    metrics: keyed(s.metrics, 'metric', multiMetrics, metricCols),
  }));
  const byId = (a: ColumnMeta, b: ColumnMeta) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  return { rows, params: [...paramCols.values()].sort(byId), metrics: [...metricCols.values()].sort(byId) };
}

/** The values of a column across rows; undefined where a row has none. */
function valuesOf(rows: readonly TableRow[], c: ColumnMeta): unknown[] {
  return rows.map((r) => (c.kind === 'param' ? r.params : r.metrics)[c.id]);
}

/** How many distinct values the rows that have one hold. */
function distinct(values: readonly unknown[]): { present: number; distinct: number } {
  const present = values.filter((v) => v !== undefined);
  return { present: present.length, distinct: new Set(present.map((v) => canonicalJson(v))).size };
}

function describeColumn(rows: readonly TableRow[], c: ColumnMeta, declared?: ReadonlyMap<string, Direction>): Column {
  const values = valuesOf(rows, c);
  const d = distinct(values);
  const constant = d.present >= 2 && d.distinct === 1;
  const direction = c.kind === 'metric' ? metricDirection(c.id, declared) : undefined;
  const best = new Set<number>();
  if (direction && c.kind === 'metric') {
    // Best among runs that finished: a failed run's partial metrics win nothing.
    const ok = values.map((v, i) => (typeof v === 'number' && rows[i]!.status === 'success' ? v : undefined));
    const nums = ok.filter((v): v is number => v !== undefined);
    if (new Set(nums).size > 1) {
      const target = direction === 'lower' ? Math.min(...nums) : Math.max(...nums);
      ok.forEach((v, i) => v === target && best.add(i));
    }
  }
  return { ...c, label: c.id, ...(direction ? { direction } : {}), constant, best };
}

/** Glob over column names: `*` any run of characters, `?` one. */
function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** The id, then every part of it after a `:`, `/` or `.`: `m.json:test.f1` → `json:test.f1`, `test.f1`, `f1`. */
function trailingParts(id: string): string[] {
  const out = [id];
  for (let i = 0; i < id.length; i++) if (id[i] === ':' || id[i] === '.' || id[i] === '/') out.push(id.slice(i + 1));
  return out.filter((s) => s !== '');
}

const stemOf = (file: string) => file.replace(/^.*\//, '').replace(/\.[^.]*$/, '');

/** Every name a column answers to: its id, its trailing parts, and `stem:key` (`selected:test.f1`) for a file-qualified one. */
function namesOf(c: ColumnMeta): string[] {
  return [...trailingParts(c.id), ...(c.id !== c.key ? [`${stemOf(c.file)}:${c.key}`] : []), ...(firstAndLeaf(c.key) ? [firstAndLeaf(c.key)!] : [])];
}

/** `test.confusion_matrix.fn` → `test.fn`: the group and the name, for keys three or more levels deep. */
function firstAndLeaf(key: string): string | undefined {
  const segs = key.split('.');
  return segs.length > 2 ? `${segs[0]}.${segs[segs.length - 1]}` : undefined;
}

const TRAINING = ['train', 'training'];
const HELD_OUT = ['test', 'val', 'valid', 'validation', 'eval', 'holdout'];

/**
 * A training-set metric with a held-out twin in the same file (`train.f1` and
 * `test.f1`, `train_loss` and `val_loss`): experiments are compared on the
 * held-out one, so the training one is a detail `--all` shows.
 */
function hasHeldOutTwin(c: ColumnMeta, keysOfFile: ReadonlySet<string>): boolean {
  for (const t of TRAINING) {
    for (const sep of ['.', '_']) {
      if (!c.key.startsWith(t + sep)) continue;
      const rest = c.key.slice(t.length + sep.length);
      if (HELD_OUT.some((h) => keysOfFile.has(`${h}${sep}${rest}`))) return true;
    }
  }
  return false;
}

/** A glob matches a column when it matches one of its names (`test.*` matches `m.json:test.f1`). */
export function globMatches(glob: string, c: ColumnMeta): boolean {
  const re = globToRegExp(glob);
  return namesOf(c).some((p) => re.test(p));
}

/**
 * Short names a person can read: the group and the name (`split.seed`,
 * `test.f1`, `test.fn` for `test.confusion_matrix.fn`), more trailing segments
 * or the file's stem (`selected:test.f1`) only when the shown columns need them.
 */
function assignLabels(cols: Column[]): void {
  const all = cols.map(labelCandidates);
  cols.forEach((c, i) => {
    const taken = new Set(all.filter((_, j) => j !== i).flat());
    c.label = all[i]!.find((l) => !taken.has(l)) ?? c.id;
  });
}

/** A column's possible short names, shortest first (the UI picks among them for the columns it shows). */
export function labelCandidates(c: ColumnMeta): string[] {
  const segs = c.key.split('.');
  const out: string[] = segs.length > 2 ? [firstAndLeaf(c.key)!] : [];
  for (let i = Math.max(segs.length - 2, 0); i >= 0; i--) out.push(segs.slice(i).join('.'));
  if (c.id !== c.key) out.push(`${stemOf(c.file)}:${c.key}`);
  out.push(c.id);
  return out;
}

export interface SelectOptions {
  /** Every param and metric. */
  readonly all?: boolean;
  readonly only?: readonly string[];
  readonly drop?: readonly string[];
  /** Metrics files no stage reads, when there are any: the pipeline's results. Others are intermediate and hidden by default. */
  readonly resultFiles?: ReadonlySet<string>;
  /** A column that must be shown (the one sorted by). */
  readonly keep?: string;
  readonly declared?: ReadonlyMap<string, Direction>;
}

/**
 * The columns to show. By default: the params that differ across the rows (a
 * lone row shows none), and the metrics of the result files that are not the
 * same in every row and are not a training-set twin of a held-out metric.
 */
export function selectColumns(t: Rows, opts: SelectOptions = {}): Column[] {
  const described = [...t.params, ...t.metrics].map((c) => describeColumn(t.rows, c, opts.declared));
  let shown: Column[];
  if (opts.only?.length) shown = described.filter((c) => opts.only!.some((g) => globMatches(g, c)));
  else if (opts.all) shown = described;
  else {
    const keysByFile = new Map<string, Set<string>>();
    for (const m of t.metrics) (keysByFile.get(m.file) ?? keysByFile.set(m.file, new Set()).get(m.file)!).add(m.key);
    shown = described.filter((c) => {
      if (c.kind === 'param') return distinct(valuesOf(t.rows, c)).distinct > 1;
      if (opts.resultFiles?.size && !opts.resultFiles.has(c.file)) return false;
      return !c.constant && !hasHeldOutTwin(c, keysByFile.get(c.file)!);
    });
  }
  if (opts.drop?.length) shown = shown.filter((c) => !opts.drop!.some((g) => globMatches(g, c)));
  if (opts.keep && !shown.some((c) => c.id === opts.keep)) {
    const k = described.find((c) => c.id === opts.keep);
    if (k) shown.push(k);
  }
  assignLabels(shown);
  return shown;
}

/**
 * The column a name means: its id, or the one column whose id ends with it at a
 * `.`, `:` or `/` boundary (`f1_weighted` → `selected.json:test.f1_weighted`
 * when nothing else ends that way). Ambiguous names list the candidates.
 */
export function resolveColumn(t: Rows, name: string): ColumnMeta {
  const cols = [...t.metrics, ...t.params];
  const exact = cols.filter((c) => c.id === name);
  if (exact.length === 1) return exact[0]!;
  const matches = cols.filter((c) => namesOf(c).includes(name));
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    const shown = matches.slice(0, 8).map((c) => c.id);
    const more = matches.length - shown.length;
    throw new UserError({
      message: `'${name}' is ambiguous: ${matches.length} columns end with it`,
      hint: `one of: ${shown.join(', ')}${more ? `, … and ${more} more` : ''}`,
    });
  }
  const leaves = cols
    .filter((c) => c.id.toLowerCase().includes(name.toLowerCase()))
    .slice(0, 8)
    .map((c) => c.id);
  throw new UserError({
    message: `cannot sort by '${name}': no metric or param ends with it`,
    hint: leaves.length ? `did you mean one of: ${leaves.join(', ')}` : `${cols.length} columns; see them with 'lockstep exp show --all'`,
  });
}

/** Row order for a column: best first for a directed metric, descending for other metrics, ascending for params; rows without a value last. */
export function sortRows(t: Rows, c: ColumnMeta, declared?: ReadonlyMap<string, Direction>): number[] {
  const dir = c.kind === 'param' ? 'asc' : metricDirection(c.id, declared) === 'lower' ? 'asc' : 'desc';
  const vals = valuesOf(t.rows, c);
  const rank = (v: unknown) => (v === undefined ? 2 : typeof v === 'number' ? 0 : 1);
  return t.rows
    .map((_, i) => i)
    .sort((a, b) => {
      const x = vals[a];
      const y = vals[b];
      if (rank(x) !== rank(y)) return rank(x) - rank(y);
      if (x === undefined) return 0;
      const cmp = typeof x === 'number' ? x - (y as number) : canonicalJson(x) < canonicalJson(y) ? -1 : canonicalJson(x) > canonicalJson(y) ? 1 : 0;
      return dir === 'asc' ? cmp : -cmp;
    });
}
