import path from 'node:path';
import { UserError, didYouMean, type Diagnostic, type SourceLocation } from '../errors.js';
import { isGlob } from '../paths.js';
import type { Command, DepDecl, OutDecl, OutKind, ParamsDecl, Stage } from '../stage.js';
import { Interpolator, type Scope } from './interpolate.js';
import { ParamsFiles, allKeys, lookup, type ParamsTree } from './params.js';
import { YamlSource } from './yaml-source.js';
import type { ParsedFileCache } from './parsed-cache.js';

export const PIPELINE_FILE = 'pipeline.yaml';
export const DEFAULT_PARAMS = 'params.yaml';

const TOP_FIELDS = ['stages', 'vars', 'params', 'metrics', 'plots', 'artifacts', 'datasets'];
const STAGE_FIELDS = [
  'cmd', 'module', 'wdir', 'deps', 'params', 'outs', 'metrics', 'plots',
  'frozen', 'always_changed', 'desc', 'meta', 'vars',
];
const OUT_FIELDS = ['cache', 'persist', 'remote', 'push', 'desc', 'checkpoint', 'type', 'labels', 'meta'];
const PLOT_PROPS = ['template', 'x', 'y', 'title', 'x_label', 'y_label', 'header'];
const PLOT_FIELDS = [...OUT_FIELDS, ...PLOT_PROPS];

export interface Pipeline {
  readonly root: string;
  readonly stages: ReadonlyMap<string, Stage>;
  /** Top-level `plots:` entries (DVC's dvc.yaml allows plots outside stages). */
  readonly plots: readonly { path: string; props: Record<string, unknown> }[];
  /**
   * Top-level `params:` and `metrics:` files (what DVCLive writes): read by
   * `params diff`, `metrics show/diff` and experiments, tracked by no stage.
   */
  readonly paramsFiles: readonly string[];
  readonly metricsFiles: readonly string[];
  readonly params: ParamsFiles;
}

type KeyPath = (string | number)[];

/** Reads pipeline.yaml at `root`, expands templating, and validates every stage. */
export function loadPipeline(root: string, cache?: ParsedFileCache): Pipeline {
  const src = YamlSource.read(path.join(root, PIPELINE_FILE), PIPELINE_FILE, cache);
  if (!src) {
    throw new UserError({
      message: `no ${PIPELINE_FILE} in ${root}`,
      hint: `run lockstep from the folder that holds ${PIPELINE_FILE}`,
    });
  }
  return new PipelineBuilder(root, src, cache).build();
}

class PipelineBuilder {
  private readonly diags: Diagnostic[] = [];
  private readonly params: ParamsFiles;

  constructor(private readonly root: string, private readonly src: YamlSource, cache?: ParsedFileCache) {
    this.params = new ParamsFiles(root, cache);
  }

  private loc(p: KeyPath, key = false): SourceLocation {
    return this.src.locate(p, key);
  }

  private error(message: string, p: KeyPath, opts: { key?: boolean; hint?: string | undefined } = {}): void {
    this.diags.push({ message, location: this.loc(p, opts.key), ...(opts.hint ? { hint: opts.hint } : {}) });
  }

  private checkFields(obj: Record<string, unknown>, allowed: readonly string[], p: KeyPath, what: string): void {
    for (const k of Object.keys(obj)) {
      if (!allowed.includes(k)) {
        this.error(`unknown field '${k}' in ${what}`, [...p, k], { key: true, hint: didYouMean(k, allowed) });
      }
    }
  }

  build(): Pipeline {
    const doc = this.src.toJS();
    if (!isPlainObject(doc)) {
      throw new UserError({ message: `${PIPELINE_FILE} must be a mapping with a 'stages' field`, location: { file: PIPELINE_FILE } });
    }
    this.checkFields(doc, TOP_FIELDS, [], 'the pipeline file');
    const rootScopes = this.rootScopes(doc.vars, ['vars']);
    const stages = new Map<string, Stage>();
    const rawStages = doc.stages ?? {};
    if (!isPlainObject(rawStages)) {
      this.error(`'stages' must be a mapping of stage names to definitions`, ['stages']);
    } else {
      for (const [name, def] of Object.entries(rawStages)) {
        const p: KeyPath = ['stages', name];
        if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
          this.error(`invalid stage name '${name}': use letters, digits, '_', '-' and '.'`, p, { key: true });
          continue;
        }
        for (const st of this.expand(name, def, p, rootScopes)) {
          if (stages.has(st.name)) this.error(`duplicate stage name '${st.name}'`, p, { key: true });
          else stages.set(st.name, st);
        }
      }
    }
    const plots = this.topPlots(doc.plots);
    const paramsFiles = this.topFiles(doc.params, 'params');
    const metricsFiles = this.topFiles(doc.metrics, 'metrics');
    if (this.diags.length) throw new UserError(this.diags);
    return { root: this.root, stages, plots, paramsFiles, metricsFiles, params: this.params };
  }

  /** Top-level `params:` / `metrics:`: a list of repository paths (DVC allows nothing else there). */
  private topFiles(raw: unknown, field: 'params' | 'metrics'): string[] {
    if (raw === undefined || raw === null) return [];
    if (!Array.isArray(raw)) {
      this.error(`top-level '${field}' must be a list of file paths`, [field]);
      return [];
    }
    const out: string[] = [];
    raw.forEach((entry, i) => {
      if (typeof entry !== 'string' || entry === '') return this.error(`an entry of top-level '${field}' must be a file path`, [field, i]);
      if (path.isAbsolute(entry) || posixJoin('', entry).startsWith('..')) return this.error(`'${entry}' is outside the repository`, [field, i]);
      const rp = posixJoin('', entry);
      if (!out.includes(rp)) out.push(rp);
    });
    return out;
  }

  private topPlots(raw: unknown): { path: string; props: Record<string, unknown> }[] {
    if (raw === undefined) return [];
    if (!Array.isArray(raw)) {
      this.error(`'plots' must be a list`, ['plots']);
      return [];
    }
    const out: { path: string; props: Record<string, unknown> }[] = [];
    raw.forEach((entry, i) => {
      if (typeof entry === 'string') out.push({ path: entry, props: {} });
      else if (isPlainObject(entry) && Object.keys(entry).length === 1) {
        const [k, v] = Object.entries(entry)[0]!;
        if (v !== null && !isPlainObject(v)) return this.error(`options of plot '${k}' must be a mapping`, ['plots', i, k]);
        const props = (v ?? {}) as Record<string, unknown>;
        this.checkFields(props, PLOT_PROPS, ['plots', i, k], `plot '${k}'`);
        this.checkPlotProps(props, ['plots', i, k], k, true);
        out.push({ path: k, props });
      } else this.error(`a plots entry must be a path or {id: {options}}`, ['plots', i]);
    });
    return out;
  }

  /**
   * Shapes DVC accepts: x a field (or, top-level, {file: field}); y a field, a
   * list of fields, or (top-level) {file: field | [fields]}; header a boolean;
   * template, title and labels strings.
   */
  private checkPlotProps(props: Record<string, unknown>, p: KeyPath, id: string, topLevel: boolean): void {
    const field = (v: unknown) => typeof v === 'string' && v !== '';
    const fields = (v: unknown) => field(v) || (Array.isArray(v) && v.length > 0 && v.every(field));
    for (const k of ['template', 'title', 'x_label', 'y_label']) {
      if (props[k] !== undefined && typeof props[k] !== 'string') this.error(`'${k}' of plot '${id}' must be a string`, [...p, k]);
    }
    if (props.header !== undefined && typeof props.header !== 'boolean') this.error(`'header' of plot '${id}' must be true or false`, [...p, 'header']);
    const { x, y } = props;
    const byFile = (v: unknown, ok: (f: unknown) => boolean) => topLevel && isPlainObject(v) && Object.keys(v).length > 0 && Object.values(v).every(ok);
    if (x !== undefined && !field(x) && !byFile(x, field)) {
      this.error(`'x' of plot '${id}' must be a field name${topLevel ? ' or a mapping {file: field}' : ''}`, [...p, 'x']);
    }
    if (y !== undefined && !fields(y) && !byFile(y, fields)) {
      this.error(`'y' of plot '${id}' must be a field name or a list of them${topLevel ? ', or a mapping {file: field or [fields]}' : ''}`, [...p, 'y']);
    }
  }

  /** params.yaml first (tracked), then top-level vars in order (files tracked, inline dicts not). */
  private rootScopes(vars: unknown, p: KeyPath): Scope[] {
    const scopes: Scope[] = [];
    const defaults = this.params.get(DEFAULT_PARAMS);
    if (defaults) scopes.push({ data: defaults, file: DEFAULT_PARAMS });
    return [...this.varsScopes(vars, p, ''), ...scopes];
  }

  private varsScopes(vars: unknown, p: KeyPath, wdir: string): Scope[] {
    if (vars === undefined) return [];
    if (!Array.isArray(vars)) {
      this.error(`'vars' must be a list of params files or mappings`, p);
      return [];
    }
    const scopes: Scope[] = [];
    vars.forEach((v, i) => {
      if (typeof v === 'string') {
        const [fileRaw, keysRaw] = v.split(':');
        const file = posixJoin(wdir, fileRaw!);
        const data = this.params.get(file);
        if (!data) {
          this.error(`vars file '${file}' does not exist`, [...p, i]);
          return;
        }
        let picked: ParamsTree = data;
        if (keysRaw) {
          picked = {};
          for (const k of keysRaw.split(',').map((s) => s.trim())) {
            if (Object.hasOwn(data, k)) picked[k] = data[k]!;
            else this.error(`key '${k}' not found in vars file '${file}'`, [...p, i], { hint: didYouMean(k, Object.keys(data)) });
          }
        }
        scopes.push({ data: picked, file });
      } else if (isPlainObject(v)) {
        scopes.push({ data: v as ParamsTree });
      } else this.error(`a vars entry must be a params file path or a mapping`, [...p, i]);
    });
    // Later entries override earlier ones, so search them first.
    return scopes.reverse();
  }

  private expand(name: string, def: unknown, p: KeyPath, scopes: Scope[]): Stage[] {
    if (!isPlainObject(def)) {
      this.error(`stage '${name}' must be a mapping`, p);
      return [];
    }
    const interp = new Interpolator(scopes);
    if ('foreach' in def) {
      this.checkFields(def, ['foreach', 'do'], p, `foreach stage '${name}'`);
      if (!isPlainObject(def.do)) {
        this.error(`foreach stage '${name}' needs a 'do' mapping`, p, { key: true });
        return [];
      }
      const items = this.catching(() => interp.resolve(def.foreach, () => this.loc([...p, 'foreach'])));
      if (items === undefined) return [];
      const entries = foreachEntries(items);
      if (!entries) {
        this.error(`'foreach' must be a list or a mapping`, [...p, 'foreach']);
        return [];
      }
      return entries.flatMap(([key, item]) => {
        const local = interp.withScope({ data: { item: item as never, key } });
        const st = this.stage(`${name}@${key}`, def.do as Record<string, unknown>, [...p, 'do'], local, name);
        return st ? [st] : [];
      });
    }
    if ('matrix' in def) {
      const { matrix, ...rest } = def;
      const m = this.catching(() => interp.resolve(matrix, () => this.loc([...p, 'matrix'])));
      if (!isPlainObject(m) || Object.values(m).some((v) => !Array.isArray(v) || v.length === 0)) {
        this.error(`'matrix' must map names to non-empty lists`, [...p, 'matrix']);
        return [];
      }
      return matrixEntries(m as Record<string, unknown[]>).flatMap(([key, item]) => {
        const local = interp.withScope({ data: { item: item as never } });
        const st = this.stage(`${name}@${key}`, rest, p, local, name);
        return st ? [st] : [];
      });
    }
    const st = this.stage(name, def, p, interp);
    return st ? [st] : [];
  }

  private catching<T>(f: () => T): T | undefined {
    try {
      return f();
    } catch (e) {
      if (e instanceof UserError) {
        this.diags.push(...e.diagnostics);
        return undefined;
      }
      throw e;
    }
  }

  private stage(name: string, def: Record<string, unknown>, p: KeyPath, outer: Interpolator, group?: string): Stage | undefined {
    const before = this.diags.length;
    this.checkFields(def, STAGE_FIELDS, p, `stage '${name}'`);
    const wdir = typeof def.wdir === 'string' ? posixJoin('', def.wdir) : '.';
    if (def.wdir !== undefined && typeof def.wdir !== 'string') this.error(`'wdir' must be a string`, [...p, 'wdir']);
    if (wdir.startsWith('..')) this.error(`'wdir' must stay inside the repository`, [...p, 'wdir']);
    const interp = def.vars !== undefined ? withScopes(outer, this.varsScopes(def.vars, [...p, 'vars'], wdir)) : outer;
    const r = <T>(field: string, cmd = false): T | undefined =>
      this.catching(() => interp.resolve(def[field], () => this.loc([...p, field]), { cmd }) as T);

    const command = this.command(name, def, p, r, wdir);
    const deps = this.deps(r('deps'), [...p, 'deps'], wdir);
    const outs = [
      ...this.outs(r('outs'), [...p, 'outs'], wdir, 'out'),
      ...this.outs(r('metrics'), [...p, 'metrics'], wdir, 'metric'),
      ...this.outs(r('plots'), [...p, 'plots'], wdir, 'plot'),
    ];
    const params = this.paramsDecls(r('params'), [...p, 'params'], wdir, interp);
    const frozen = this.bool(def.frozen, [...p, 'frozen']);
    const alwaysChanged = this.bool(def.always_changed, [...p, 'always_changed']);
    const desc = r<unknown>('desc');
    if (this.diags.length > before || !command) return undefined;
    const locate = () => this.loc(p, true);
    let located: SourceLocation | undefined;
    return {
      name,
      ...(group ? { group } : {}),
      command,
      wdir,
      deps,
      params,
      outs,
      frozen,
      alwaysChanged,
      ...(typeof desc === 'string' ? { desc } : {}),
      // Only errors need it, and finding positions re-parses a file the parsed cache spared us: look it up lazily.
      get location(): SourceLocation {
        return (located ??= locate());
      },
    };
  }

  private command(name: string, def: Record<string, unknown>, p: KeyPath, r: <T>(f: string, cmd?: boolean) => T | undefined, wdir: string): Command | undefined {
    if (def.cmd !== undefined && def.module !== undefined) {
      this.error(`stage '${name}' has both 'cmd' and 'module'; give one`, [...p, 'module'], { key: true });
      return undefined;
    }
    if (def.module !== undefined) {
      const m = r<unknown>('module');
      if (typeof m !== 'string' || !/\.(m|c)?[jt]s$/.test(m)) {
        this.error(`'module' must be the path of a .ts or .js stage module`, [...p, 'module']);
        return undefined;
      }
      // Like every path in a stage, relative to its wdir; kept repository-relative from here on.
      const rel = posixJoin(wdir === '.' ? '' : wdir, m);
      if (rel.startsWith('..')) {
        this.error(`'module' must be inside the repository`, [...p, 'module']);
        return undefined;
      }
      return { kind: 'module', module: rel };
    }
    if (def.cmd === undefined) {
      this.error(`stage '${name}' has no 'cmd' (or 'module')`, p, { key: true });
      return undefined;
    }
    const c = r<unknown>('cmd', true);
    if (c === undefined) return undefined;
    const commands = Array.isArray(c) ? c : [c];
    if (commands.length === 0 || !commands.every((x) => typeof x === 'string' && x.trim() !== '')) {
      this.error(`'cmd' must be a non-empty string or a list of strings`, [...p, 'cmd']);
      return undefined;
    }
    return { kind: 'shell', commands: commands as string[] };
  }

  private bool(v: unknown, p: KeyPath): boolean {
    if (v === undefined) return false;
    if (typeof v !== 'boolean') this.error(`'${p[p.length - 1]}' must be true or false`, p);
    return v === true;
  }

  private repoPath(wdir: string, raw: string): string {
    return posixJoin(wdir, raw);
  }

  private deps(raw: unknown, p: KeyPath, wdir: string): DepDecl[] {
    if (raw === undefined) return [];
    if (!Array.isArray(raw)) {
      this.error(`'deps' must be a list of paths`, p);
      return [];
    }
    const seen = new Set<string>();
    const deps: DepDecl[] = [];
    raw.forEach((d, i) => {
      if (typeof d !== 'string' || d === '') return this.error(`a dep must be a path string`, [...p, i]);
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(d)) {
        if (!/^(https?|s3):\/\//i.test(d)) return this.error(`external dep '${d}': only https://, http:// and s3:// URLs are supported`, [...p, i]);
        if (seen.has(d)) return this.error(`dep '${d}' is listed twice`, [...p, i]);
        seen.add(d);
        deps.push({ path: d, glob: false, external: true });
        return;
      }
      const rp = this.repoPath(wdir, d);
      if (seen.has(rp)) return this.error(`dep '${d}' is listed twice`, [...p, i]);
      seen.add(rp);
      deps.push({ path: rp, glob: isGlob(d) });
    });
    return deps;
  }

  private outs(raw: unknown, p: KeyPath, wdir: string, kind: OutKind): OutDecl[] {
    if (raw === undefined) return [];
    const field = p[p.length - 1] as string;
    if (!Array.isArray(raw)) {
      this.error(`'${field}' must be a list`, p);
      return [];
    }
    const outs: OutDecl[] = [];
    raw.forEach((entry, i) => {
      let rawPath: string;
      let opts: Record<string, unknown> = {};
      let variants: Record<string, unknown>[] = [];
      if (typeof entry === 'string') rawPath = entry;
      else if (isPlainObject(entry) && Object.keys(entry).length === 1) {
        const [k, v] = Object.entries(entry)[0]!;
        rawPath = k;
        // A plot may carry a list of definitions (several views of one file), as DVC allows.
        if (kind === 'plot' && Array.isArray(v) && v.length > 0 && v.every(isPlainObject)) variants = v as Record<string, unknown>[];
        else if (v !== null && !isPlainObject(v)) return this.error(`options of '${k}' must be a mapping`, [...p, i, k]);
        else variants = [(v ?? {}) as Record<string, unknown>];
        opts = variants[0]!;
        variants.forEach((o, j) => {
          const at = variants.length > 1 || Array.isArray(v) ? [...p, i, k, j] : [...p, i, k];
          this.checkFields(o, kind === 'plot' ? PLOT_FIELDS : OUT_FIELDS, at, `${field} entry '${k}'`);
          if (kind === 'plot') this.checkPlotProps(o, at, k, false);
        });
      } else return this.error(`an entry of '${field}' must be a path or {path: {options}}`, [...p, i]);
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rawPath)) return this.error(`'${rawPath}': external outputs (URLs) are not supported; outputs live in the repository`, [...p, i]);
      if (rawPath === '' || isGlob(rawPath)) return this.error(`'${rawPath}' is not a valid output path (no globs)`, [...p, i]);
      if (path.isAbsolute(rawPath) || posixJoin(wdir, rawPath).startsWith('..')) {
        return this.error(`output '${rawPath}' is outside the repository; outputs must stay inside it`, [...p, i]);
      }
      const rp = this.repoPath(wdir, rawPath);
      if (rp === '.' || rp === PIPELINE_FILE || rp === 'pipeline.lock' || rp === '.lockstep' || rp.startsWith('.lockstep/') || rp === '.git' || rp.startsWith('.git/')) {
        return this.error(`'${rawPath}' cannot be an output: it is part of the repository's own state`, [...p, i]);
      }
      for (const b of ['cache', 'persist', 'push'] as const) {
        if (opts[b] !== undefined && typeof opts[b] !== 'boolean') this.error(`'${b}' must be true or false`, [...p, i]);
      }
      const plots = kind === 'plot' ? (variants.length ? variants : [{}]).map((o) => pick(o, PLOT_PROPS)) : undefined;
      outs.push({
        path: rp,
        kind,
        cache: opts.cache !== false,
        persist: opts.persist === true,
        push: opts.push !== false,
        ...(plots ? { plots } : {}),
      });
    });
    return outs;
  }

  private paramsDecls(raw: unknown, p: KeyPath, wdir: string, interp: Interpolator): ParamsDecl[] {
    const byFile = new Map<string, Set<string> | 'all'>();
    const add = (file: string, key: string | 'all', at: KeyPath): void => {
      const tree = this.params.get(file);
      if (!tree) return this.error(`params file '${file}' does not exist`, at);
      if (key !== 'all' && !lookup(tree, key).found) {
        return this.error(`param '${key}' not found in ${file}`, at, { hint: didYouMean(key, allKeys(tree)) });
      }
      const cur = byFile.get(file);
      if (key === 'all' || cur === 'all') byFile.set(file, 'all');
      else (cur ?? byFile.set(file, new Set()).get(file) as Set<string>).add(key);
    };
    if (raw !== undefined) {
      if (!Array.isArray(raw)) this.error(`'params' must be a list`, p);
      else {
        raw.forEach((entry, i) => {
          if (typeof entry === 'string') return add(posixJoin(wdir, DEFAULT_PARAMS), entry, [...p, i]);
          if (isPlainObject(entry)) {
            for (const [file, keys] of Object.entries(entry)) {
              const f = posixJoin(wdir, file);
              if (keys === null || (Array.isArray(keys) && keys.length === 0)) add(f, 'all', [...p, i, file]);
              else if (Array.isArray(keys) && keys.every((k) => typeof k === 'string')) keys.forEach((k) => add(f, k, [...p, i, file]));
              else this.error(`params of '${file}' must be a list of keys`, [...p, i, file]);
            }
            return;
          }
          this.error(`a params entry must be a key or {file: [keys]}`, [...p, i]);
        });
      }
    }
    // Values a stage interpolates from params files are params deps too, as in DVC.
    for (const u of interp.used) {
      const cur = byFile.get(u.file);
      if (cur !== 'all') (cur ?? byFile.set(u.file, new Set()).get(u.file) as Set<string>).add(u.key);
    }
    return [...byFile.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([file, keys]) => ({ file, keys: keys === 'all' ? 'all' : [...keys].sort() }));
  }
}

function withScopes(interp: Interpolator, scopes: Scope[]): Interpolator {
  let out = interp;
  for (const s of [...scopes].reverse()) out = out.withScope(s);
  return out;
}

function foreachEntries(items: unknown): [string, unknown][] | undefined {
  if (Array.isArray(items)) {
    const scalars = items.every((x) => x === null || typeof x !== 'object');
    const keys = scalars ? items.map((x) => String(x)) : items.map((_, i) => String(i));
    // DVC falls back to indexes when scalar values would collide as names.
    const unique = new Set(keys).size === keys.length;
    return items.map((x, i) => [unique ? keys[i]! : String(i), x]);
  }
  if (isPlainObject(items)) return Object.entries(items);
  return undefined;
}

function matrixEntries(m: Record<string, unknown[]>): [string, Record<string, unknown>][] {
  let acc: [string[], Record<string, unknown>][] = [[[], {}]];
  for (const [name, values] of Object.entries(m)) {
    const next: typeof acc = [];
    for (const [keys, item] of acc) {
      values.forEach((v, i) => {
        const key = v === null || typeof v !== 'object' ? String(v) : `${name}${i}`;
        next.push([[...keys, key], { ...item, [name]: v }]);
      });
    }
    acc = next;
  }
  return acc.map(([keys, item]) => [keys.join('-'), item]);
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Join a wdir and a path into a normalised POSIX path relative to the repository root. */
export function posixJoin(wdir: string, p: string): string {
  if (path.isAbsolute(p)) return p;
  return path.posix.normalize(path.posix.join(wdir || '.', p)).replace(/\/$/, '');
}
