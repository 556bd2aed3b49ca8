import fs from 'node:fs';
import path from 'node:path';
import { UserError, didYouMean, type Diagnostic, type SourceLocation } from '../errors.js';
import { isGlob, isWithin } from '../paths.js';
import { guardFor, ALLOW_HINT } from '../containment.js';
import type { Command, DepDecl, OutDecl, OutKind, ParamsDecl, Stage } from '../stage.js';
import { Interpolator, type Scope } from './interpolate.js';
import { ParamsFiles, allKeys, lookup, type ParamsTree } from './params.js';
import { YamlSource } from './yaml-source.js';
import type { ParsedFileCache } from './parsed-cache.js';
import { sameSig, settled, sigOfPath, type Sig } from '../hash/signature.js';
import { CONTAINER_FIELDS, NETWORKS, type ContainerSpec, type Network } from '../container/spec.js';

export const PIPELINE_FILE = 'pipeline.yaml';
/** DVC's name for the same file: a DVC repository works without renaming it. */
const DVC_PIPELINE_FILE = 'dvc.yaml';

/** The pipeline file in `dir`: pipeline.yaml, else dvc.yaml; undefined when there is neither. */
export function pipelineFileIn(dir: string): string | undefined {
  for (const f of [PIPELINE_FILE, DVC_PIPELINE_FILE]) if (fs.existsSync(path.join(dir, f))) return f;
  return undefined;
}
export const DEFAULT_PARAMS = 'params.yaml';

const TOP_FIELDS = ['stages', 'vars', 'params', 'metrics', 'plots', 'artifacts', 'datasets'];
const STAGE_FIELDS = ['cmd', 'module', 'wdir', 'deps', 'params', 'outs', 'metrics', 'plots', 'frozen', 'always_changed', 'desc', 'meta', 'vars', 'container'];
const OUT_FIELDS = ['cache', 'persist', 'remote', 'push', 'desc', 'checkpoint', 'type', 'labels', 'meta'];

/**
 * Fields of DVC's dvc.yaml schema (dvc/schema.py) that Lockstep does not implement.
 * They are refused by name: accepting them would quietly run a pipeline
 * differently from DVC. (Annotations — desc, type, labels, meta — and
 * `artifacts` are metadata in DVC too and change nothing about a run.)
 */
const UNSUPPORTED: Readonly<Record<string, string>> = {
  datasets: "DVC's datasets (and their ds:// deps) are not implemented; depend on the data's path instead",
  checkpoint: "checkpoint outputs were removed in DVC 3 and are not implemented; use a plain output with 'persist: true'",
};
const PLOT_PROPS = ['template', 'x', 'y', 'title', 'x_label', 'y_label', 'header'];
const PLOT_FIELDS = [...OUT_FIELDS, ...PLOT_PROPS];
// A metrics file may say which of its metrics are better lower or higher (globs over their keys), for `exp show`'s ★.
const METRIC_FIELDS = [...OUT_FIELDS, 'lower', 'higher'];

/** One pipeline file of the repository: the root one, or one in a subfolder (DVC collects every dvc.yaml). */
export interface PipelineFileRef {
  /** Repository-relative path of the file (`pipeline.yaml`, `sub/dvc.yaml`). */
  readonly file: string;
  /** Its folder, repository-relative; '' for the root. */
  readonly dir: string;
  /** What its stage names are qualified with: '' for the root file, `sub/pipeline.yaml:` for the others. */
  readonly prefix: string;
}

export interface Pipeline {
  readonly root: string;
  readonly stages: ReadonlyMap<string, Stage>;
  /** Every pipeline file the stages came from, the root one first. */
  readonly files: readonly PipelineFileRef[];
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

/**
 * Reads pipeline.yaml (or dvc.yaml) at `root` and, as DVC does, every one in
 * its subfolders; expands templating, and validates every stage. A nested
 * file's paths are relative to its folder, and its stages are named
 * `sub/pipeline.yaml:stage`.
 */
export function loadPipeline(root: string, cache?: ParsedFileCache): Pipeline {
  const file = pipelineFileIn(root) ?? PIPELINE_FILE;
  // No pipeline file at the root is fine when subfolders have theirs (a DVC monorepo); an empty one stands in.
  const src = YamlSource.read(path.join(root, file), file, cache) ?? YamlSource.parse(file, 'stages: {}\n');
  const params = new ParamsFiles(root, cache);
  const diags: Diagnostic[] = [];
  const build = (ref: PipelineFileRef, s: YamlSource): Pipeline | undefined => {
    try {
      return new PipelineBuilder(root, s, params, ref).build();
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      diags.push(...e.diagnostics);
      return undefined;
    }
  };
  const mainRef: PipelineFileRef = { file, dir: '', prefix: '' };
  const main = build(mainRef, src);
  // Outputs hold data, never pipeline files: their folders are not searched (a big data folder would cost every run).
  const skip = new Set(main ? [...main.stages.values()].flatMap((st) => st.outs.map((o) => o.path)) : []);
  const refs = [mainRef];
  const stages = new Map(main?.stages ?? []);
  const plots = [...(main?.plots ?? [])];
  for (const rel of findNestedPipelineFiles(root, skip, cache)) {
    const dir = path.posix.dirname(rel);
    const ref: PipelineFileRef = { file: rel, dir, prefix: `${rel}:` };
    const nestedSrc = YamlSource.read(path.join(root, rel), rel, cache);
    const nested = nestedSrc && build(ref, nestedSrc);
    if (!nested) continue;
    refs.push(ref);
    for (const [n, st] of nested.stages) stages.set(n, st);
    plots.push(...nested.plots);
  }
  if (diags.length || !main) throw new UserError(diags);
  if (refs.length === 1 && !fs.existsSync(path.join(root, file))) {
    throw new UserError({ message: `no ${PIPELINE_FILE} in ${root}`, hint: `run lockstep from the folder that holds ${PIPELINE_FILE}` });
  }
  return { ...main, stages, plots, files: refs };
}

/**
 * One pipeline file's text into stages, as `loadPipeline` builds the root
 * file (no nested files are looked for): what unit tests and tools that hold
 * a pipeline in memory use.
 */
export function buildPipeline(root: string, text: string, file = PIPELINE_FILE): Pipeline {
  return new PipelineBuilder(root, YamlSource.parse(file, text), new ParamsFiles(root), { file, dir: '', prefix: '' }).build();
}

const NEVER_SEARCHED = new Set(['.git', '.lockstep', '.dvc', 'node_modules']);

interface Discovery {
  readonly skip: string;
  /** Every folder searched, with its mtime: a pipeline file or folder added or removed changes its parent's. */
  readonly dirs: readonly (readonly [string, Sig | null])[];
  readonly found: readonly string[];
}

/**
 * pipeline.yaml (or else dvc.yaml) in every subfolder of `root`, sorted, skipping
 * VCS/state folders and `skip` (outputs). The answer is remembered with the
 * folders' stat signatures: checking those costs a stat per folder, far less than
 * reading every folder again on each run.
 */
export function findNestedPipelineFiles(root: string, skip: ReadonlySet<string>, cache?: ParsedFileCache): string[] {
  const key = path.join(root, '\0nested-pipeline-files');
  const ignore = ignoredFolders(root);
  const skipKey = [...skip].sort().join('\n') + '\0' + ignore.source;
  let rootSt: fs.Stats | undefined;
  try {
    rootSt = fs.statSync(root);
  } catch {
    return [];
  }
  const hit = cache?.get(key, rootSt)?.value as Discovery | undefined;
  if (hit && hit.skip === skipKey && hit.dirs.every(([rel, sig]) => sameFolder(sig, sigOfPath(path.join(root, rel))))) return [...hit.found];
  const found: string[] = [];
  const dirs: [string, Sig | null][] = [];
  let fresh = false;
  const walk = (rel: string): void => {
    const abs = rel ? path.join(root, rel) : root;
    let entries: fs.Dirent[];
    try {
      const readStart = Date.now();
      const sig = sigOfPath(abs) ?? null;
      entries = fs.readdirSync(abs, { withFileTypes: true });
      dirs.push([rel, sig]);
      // A folder changed within a timestamp tick of this listing could change again unseen: don't remember the answer.
      if (!sig || !settled(sig, readStart)) fresh = true;
    } catch {
      return; // unreadable folder: nothing DVC would find either
    }
    if (rel) {
      // A folder with its own .git or .dvc is another repository (a submodule, a DVC subrepo): not part of this graph.
      if (entries.some((e) => e.name === '.git' || e.name === '.dvc')) return;
      const names = new Set(entries.filter((e) => e.isFile()).map((e) => e.name));
      const f = names.has(PIPELINE_FILE) ? PIPELINE_FILE : names.has(DVC_PIPELINE_FILE) ? DVC_PIPELINE_FILE : undefined;
      if (f) found.push(`${rel}/${f}`);
    }
    for (const e of entries) {
      if (!e.isDirectory() || NEVER_SEARCHED.has(e.name)) continue;
      const sub = rel ? `${rel}/${e.name}` : e.name;
      if (!skip.has(sub) && !ignore.test(sub)) walk(sub);
    }
  };
  walk('');
  found.sort();
  if (!fresh) cache?.put(key, rootSt, { skip: skipKey, dirs, found } satisfies Discovery);
  return found;
}

/**
 * Folders a `.dvcignore` or `.lockstepignore` at the root names (as DVC skips
 * them when it collects dvc.yaml files): one gitignore-style pattern a line,
 * `*`, `**` and `?` wildcards, a leading `/` anchors it to the root. Negation
 * (`!`) is not supported and is refused, rather than ignored.
 */
function ignoredFolders(root: string): { source: string; test: (rel: string) => boolean } {
  const patterns: RegExp[] = [];
  let source = '';
  for (const name of ['.dvcignore', '.lockstepignore']) {
    let text: string;
    try {
      text = fs.readFileSync(path.join(root, name), 'utf8');
    } catch {
      continue;
    }
    source += text + '\0';
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      if (line.startsWith('!')) throw new UserError({ message: `negated patterns are not supported`, location: { file: name, line: i + 1, column: 1 } });
      const anchored = line.startsWith('/') || line.replace(/\/$/, '').includes('/');
      const body = line.replace(/^\//, '').replace(/\/$/, '');
      const re = body
        .split('**')
        .map((part) =>
          part
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '[^/]*')
            .replace(/\?/g, '[^/]'),
        )
        .join('.*');
      patterns.push(new RegExp(anchored ? `^${re}$` : `(^|/)${re}$`));
    });
  }
  return { source, test: (rel) => patterns.some((p) => p.test(rel)) };
}

/** A folder is as remembered when it has the same stat signature (its listing changes its mtime and ctime). */
function sameFolder(was: Sig | null, now: Sig | undefined): boolean {
  return was !== null && now !== undefined && sameSig(was, 0, now);
}

class PipelineBuilder {
  private readonly diags: Diagnostic[] = [];
  /** Every output declared, with where, checked once all params files are known. */
  private readonly outSites: { rp: string; raw: string; at: KeyPath }[] = [];
  /** Real paths found while checking this pipeline (folders shared by many paths are resolved once). */
  private readonly realMemo = new Map<string, string>();
  /** Params files the pipeline reads (params: and vars:), which no stage may overwrite. */
  private readonly paramsFilesUsed = new Set<string>();
  private readonly dir: string;
  private readonly prefix: string;
  /** Interpolated params the last stage built did not declare (set by paramsDecls). */
  private lastTracked: readonly { file: string; key: string }[] = [];

  constructor(
    private readonly root: string,
    private readonly src: YamlSource,
    private readonly params: ParamsFiles,
    private readonly ref: PipelineFileRef,
  ) {
    this.dir = ref.dir;
    this.prefix = ref.prefix;
  }

  private loc(p: KeyPath, key = false): SourceLocation {
    return this.src.locate(p, key);
  }

  private error(message: string, p: KeyPath, opts: { key?: boolean; hint?: string | undefined } = {}): void {
    this.diags.push({ message, location: this.loc(p, opts.key), ...(opts.hint ? { hint: opts.hint } : {}) });
  }

  private checkFields(obj: Record<string, unknown>, allowed: readonly string[], p: KeyPath, what: string): void {
    for (const k of Object.keys(obj)) {
      if (Object.hasOwn(UNSUPPORTED, k) && allowed.includes(k)) {
        this.error(`'${k}' in ${what} is not supported by Lockstep`, [...p, k], { key: true, hint: UNSUPPORTED[k] });
      } else if (!allowed.includes(k)) {
        this.error(`unknown field '${k}' in ${what}`, [...p, k], { key: true, hint: didYouMean(k, allowed) });
      }
    }
  }

  build(): Pipeline {
    const doc = this.src.toJS();
    if (!isPlainObject(doc)) {
      throw new UserError({ message: `${this.src.file} must be a mapping with a 'stages' field`, location: { file: this.src.file } });
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
    this.checkOutSites();
    const paramsFiles = this.topFiles(doc.params, 'params');
    const metricsFiles = this.topFiles(doc.metrics, 'metrics');
    if (this.diags.length) throw new UserError(this.diags);
    return { root: this.root, stages, plots, paramsFiles, metricsFiles, params: this.params, files: [this.ref] };
  }

  /**
   * An output is deleted before its stage runs and overwritten after: it must
   * not be a file the pipeline itself reads as params, and it must not lead
   * through a symlink outside the repository or into its state.
   */
  private checkOutSites(): void {
    if (this.outSites.length === 0) return;
    const guard = guardFor(this.root);
    const memo = this.realMemo;
    const protectedFiles = [...this.paramsFilesUsed, PIPELINE_FILE, 'pipeline.lock'];
    const protectedReal = protectedFiles.map((f) => [guard.real(f, memo), f] as const);
    for (const { rp, raw, at } of this.outSites) {
      const own = [...this.paramsFilesUsed].find((f) => isWithin(rp, f));
      if (own) {
        this.error(`'${raw}' cannot be an output: ${own === rp ? 'it is' : 'it holds'} the params file '${own}' the pipeline reads`, at);
        continue;
      }
      const real = guard.real(rp, memo);
      const hit = protectedReal.find(([r]) => isWithin(real, r));
      if (hit) {
        this.error(`'${raw}' cannot be an output: through a symlink it is '${hit[1]}'`, at);
        continue;
      }
      const why = guard.problemOf(rp, real);
      if (why) this.error(`output '${raw}' is unsafe: ${why}`, at, { hint: ALLOW_HINT });
    }
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
      if (typeof entry === 'string') out.push({ path: posixJoin(this.dir, entry), props: {} });
      else if (isPlainObject(entry) && Object.keys(entry).length === 1) {
        const [k, v] = Object.entries(entry)[0]!;
        if (v !== null && !isPlainObject(v)) return this.error(`options of plot '${k}' must be a mapping`, ['plots', i, k]);
        const props = (v ?? {}) as Record<string, unknown>;
        this.checkFields(props, PLOT_PROPS, ['plots', i, k], `plot '${k}'`);
        this.checkPlotProps(props, ['plots', i, k], k, true);
        out.push({ path: posixJoin(this.dir, k), props });
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
    // As DVC: the params.yaml beside the pipeline file, and vars relative to its folder.
    const file = posixJoin(this.dir, DEFAULT_PARAMS);
    const defaults = this.params.get(file);
    if (defaults) this.paramsFilesUsed.add(file);
    if (defaults) scopes.push({ data: defaults, file, source: file });
    return [...this.varsScopes(vars, p, this.dir, scopes, ''), ...scopes];
  }

  /**
   * Scopes for a `vars` list, innermost (last) first. As in DVC, an entry may add
   * keys (and keys inside existing mappings) but never redefine one that params.yaml
   * or an earlier entry defines; listing a whole file that is already loaded is a no-op.
   */
  private varsScopes(vars: unknown, p: KeyPath, wdir: string, outer: readonly Scope[], stageName: string): Scope[] {
    if (vars === undefined) return [];
    if (!Array.isArray(vars)) {
      this.error(`'vars' must be a list of params files or mappings`, p);
      return [];
    }
    const scopes: Scope[] = [];
    const loaded = (file: string) => [...outer, ...scopes].some((s) => s.file === file && s.source === file);
    vars.forEach((v, i) => {
      let scope: Scope;
      if (typeof v === 'string') {
        const [fileRaw, keysRaw] = v.split(':');
        const file = posixJoin(wdir, fileRaw!);
        if (!keysRaw && loaded(file)) return;
        const before = this.diags.length;
        const data = this.catching(() => this.params.get(file));
        if (data !== undefined) this.paramsFilesUsed.add(file);
        if (data === undefined) {
          if (this.diags.length === before) this.error(`vars file '${file}' does not exist`, [...p, i]);
          return;
        }
        let picked: ParamsTree = data;
        if (keysRaw) {
          picked = {};
          for (const k of keysRaw
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)) {
            if (Object.hasOwn(data, k)) picked[k] = data[k]!;
            else this.error(`key '${k}' not found in vars file '${file}'`, [...p, i], { hint: didYouMean(k, Object.keys(data)) });
          }
        }
        scope = { data: picked, file, source: keysRaw ? `${file}:${keysRaw}` : file };
      } else if (isPlainObject(v)) {
        scope = { data: v as ParamsTree, source: `${stageName ? stageName + '.' : ''}vars[${i}]` };
      } else {
        this.error(`a vars entry must be a params file path or a mapping`, [...p, i]);
        return;
      }
      const clash = redefinition([...outer, ...scopes], scope.data);
      if (clash) {
        this.error(`cannot redefine '${clash.key}' from '${scope.source}' as it already exists in '${clash.source}'`, [...p, i], {
          hint: 'DVC refuses this too: rename the key, or change its value where it is defined',
        });
        return;
      }
      scopes.push(scope);
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
      if (entries.length === 0) {
        this.error(`'foreach' of stage '${name}' is empty: it would make no stages`, [...p, 'foreach']);
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
      if (m === undefined) return [];
      if (isPlainObject(m) && Object.keys(m).length === 0) {
        this.error(`'matrix' of stage '${name}' is empty: it would make no stages`, [...p, 'matrix']);
        return [];
      }
      if (!isPlainObject(m) || Object.values(m).some((v) => !Array.isArray(v) || v.length === 0)) {
        this.error(`'matrix' must map names to non-empty lists`, [...p, 'matrix']);
        return [];
      }
      return matrixEntries(m as Record<string, unknown[]>).flatMap(([key, item]) => {
        const local = interp.withScope({ data: { item: item as never, key } });
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

  private stage(shortName: string, def: Record<string, unknown>, p: KeyPath, outer: Interpolator, shortGroup?: string): Stage | undefined {
    const before = this.diags.length;
    const name = this.prefix + shortName;
    const group = shortGroup === undefined ? undefined : this.prefix + shortGroup;
    this.checkFields(def, STAGE_FIELDS, p, `stage '${name}'`);
    // DVC interpolates wdir before the stage's own vars are loaded (they are read relative to it).
    const rawWdir = def.wdir === undefined ? undefined : this.catching(() => outer.resolve(def.wdir, () => this.loc([...p, 'wdir'])));
    const wdir = posixJoin(this.dir, typeof rawWdir === 'string' ? rawWdir : '.');
    if (def.wdir !== undefined && typeof def.wdir !== 'string') this.error(`'wdir' must be a string`, [...p, 'wdir']);
    else if (rawWdir !== undefined && typeof rawWdir !== 'string')
      this.error(`'wdir' must be a path, but \${…} gave ${JSON.stringify(rawWdir)}`, [...p, 'wdir']);
    else if (typeof rawWdir === 'string' && path.isAbsolute(rawWdir))
      this.error(`'wdir' must be a path inside the repository, not an absolute path`, [...p, 'wdir']);
    else if (wdir === '..' || wdir.startsWith('../')) this.error(`'wdir' must stay inside the repository`, [...p, 'wdir']);
    else if (wdir !== '.') {
      // The stage runs there and writes relative to it: where it resolves matters, not how it reads.
      const why = guardFor(this.root).problem(wdir, this.realMemo);
      if (why) this.error(`'wdir' ${wdir} is unsafe: ${why}`, [...p, 'wdir'], { hint: ALLOW_HINT });
    }
    const interp = def.vars !== undefined ? withScopes(outer, this.varsScopes(def.vars, [...p, 'vars'], wdir, outer.scopeList, shortName)) : outer;
    // A params value read for wdir (through `outer`) is a param of the stage too.
    if (interp !== outer) interp.used.push(...outer.used);
    const r = <T>(field: string, cmd = false): T | undefined => this.catching(() => interp.resolve(def[field], () => this.loc([...p, field]), { cmd }) as T);

    const command = this.command(name, def, p, r, wdir);
    const deps = this.deps(r('deps'), [...p, 'deps'], wdir);
    const outs = [
      ...this.outs(r('outs'), [...p, 'outs'], wdir, 'out'),
      ...this.outs(r('metrics'), [...p, 'metrics'], wdir, 'metric'),
      ...this.outs(r('plots'), [...p, 'plots'], wdir, 'plot'),
    ];
    const params = this.paramsDecls(r('params'), [...p, 'params'], wdir, interp);
    const trackedVars = this.lastTracked;
    const frozen = this.bool(def.frozen, [...p, 'frozen']);
    const alwaysChanged = this.bool(def.always_changed, [...p, 'always_changed']);
    const desc = r<unknown>('desc');
    const container = def.container === undefined ? undefined : this.container(r('container'), [...p, 'container'], wdir);
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
      ...(trackedVars.length ? { trackedVars } : {}),
      outs,
      frozen,
      alwaysChanged,
      ...(typeof desc === 'string' ? { desc } : {}),
      ...(container ? { container } : {}),
      // Only errors need it, and finding positions re-parses a file the parsed cache spared us: look it up lazily.
      get location(): SourceLocation {
        return (located ??= locate());
      },
    };
  }

  private command(
    name: string,
    def: Record<string, unknown>,
    p: KeyPath,
    r: <T>(f: string, cmd?: boolean) => T | undefined,
    wdir: string,
  ): Command | undefined {
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

  /** `container: {image: NAME}` or `container: {build: FILE, context: DIR, args: {…}}`, plus network, env and limits. */
  private container(raw: unknown, p: KeyPath, wdir: string): ContainerSpec | undefined {
    if (raw === undefined) return undefined;
    if (!isPlainObject(raw)) {
      this.error(`'container' must be a mapping with 'image' or 'build'`, p);
      return undefined;
    }
    const before = this.diags.length;
    this.checkFields(raw, CONTAINER_FIELDS, p, `'container'`);
    const inRepo = (v: unknown, field: string): string | undefined => {
      if (typeof v !== 'string' || v === '') return void this.error(`'container.${field}' must be a path`, [...p, field]);
      const rp = posixJoin(wdir, v);
      if (path.isAbsolute(rp) || rp.startsWith('..')) return void this.error(`'container.${field}' must be inside the repository`, [...p, field]);
      return rp;
    };
    const strings = (v: unknown, field: string): Record<string, string> => {
      if (v === undefined) return {};
      if (!isPlainObject(v) || !Object.values(v).every((x) => ['string', 'number', 'boolean'].includes(typeof x))) {
        this.error(`'container.${field}' must map names to strings`, [...p, field]);
        return {};
      }
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)]));
    };
    const network = (raw.network ?? 'none') as Network;
    if (!NETWORKS.includes(network)) this.error(`'container.network' must be one of ${NETWORKS.join(', ')}, got '${String(raw.network)}'`, [...p, 'network']);
    const env = strings(raw.env, 'env');
    const cpus = raw.cpus;
    if (cpus !== undefined && (typeof cpus !== 'number' || !(cpus > 0))) this.error(`'container.cpus' must be a positive number`, [...p, 'cpus']);
    const memory = raw.memory === undefined ? undefined : String(raw.memory);
    if (memory !== undefined && !/^\d+(\.\d+)?[bkmg]?$/i.test(memory))
      this.error(`'container.memory' must be a size such as 512m or 2g, got '${memory}'`, [...p, 'memory']);
    const limits = { network, env, ...(typeof cpus === 'number' ? { cpus } : {}), ...(memory !== undefined ? { memory } : {}) };
    if ((raw.image === undefined) === (raw.build === undefined)) {
      this.error(`'container' needs exactly one of 'image' (a name) or 'build' (a Containerfile)`, p, { key: true });
      return undefined;
    }
    if (raw.image !== undefined) {
      if (raw.context !== undefined || raw.args !== undefined)
        this.error(`'container.context' and 'container.args' go with 'build', not 'image'`, [...p, raw.context !== undefined ? 'context' : 'args'], {
          key: true,
        });
      if (typeof raw.image !== 'string' || !/^[\w][\w.\-/:@]*$/.test(raw.image))
        this.error(`'container.image' must be an image name such as debian:bookworm`, [...p, 'image']);
      return this.diags.length > before ? undefined : { ...limits, image: raw.image as string };
    }
    const file = inRepo(raw.build, 'build');
    const context = raw.context === undefined ? (file ? path.posix.dirname(file) : undefined) : inRepo(raw.context, 'context');
    const args = strings(raw.args, 'args');
    if (this.diags.length > before || !file || !context) return undefined;
    return { ...limits, build: { file, context, args } };
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
      // Deps may lead anywhere (they are only read), except into Lockstep's own state, which changes on every run.
      if (!isGlob(d) && !rp.startsWith('../') && !path.isAbsolute(rp)) {
        const real = guardFor(this.root).real(rp, this.realMemo);
        if (isWithin(path.join(guardFor(this.root).rootReal, '.lockstep'), real)) {
          const direct = rp === '.lockstep' || rp.startsWith('.lockstep/');
          return this.error(`dep '${d}' ${direct ? 'is' : 'leads through a symlink'} inside .lockstep/, Lockstep's own state, which changes on every run`, [
            ...p,
            i,
          ]);
        }
      }
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
          this.checkFields(o, kind === 'plot' ? PLOT_FIELDS : kind === 'metric' ? METRIC_FIELDS : OUT_FIELDS, at, `${field} entry '${k}'`);
          if (kind === 'plot') this.checkPlotProps(o, at, k, false);
        });
      } else return this.error(`an entry of '${field}' must be a path or {path: {options}}`, [...p, i]);
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rawPath))
        return this.error(`'${rawPath}': external outputs (URLs) are not supported; outputs live in the repository`, [...p, i]);
      if (rawPath === '' || isGlob(rawPath)) return this.error(`'${rawPath}' is not a valid output path (no globs)`, [...p, i]);
      if (path.isAbsolute(rawPath) || posixJoin(wdir, rawPath).startsWith('..')) {
        return this.error(`output '${rawPath}' is outside the repository; outputs must stay inside it`, [...p, i]);
      }
      const rp = this.repoPath(wdir, rawPath);
      const own = [PIPELINE_FILE, DVC_PIPELINE_FILE, 'pipeline.lock', 'dvc.lock'].map((f) => posixJoin(this.dir, f));
      if (rp === '.' || own.includes(rp) || rp === '.lockstep' || rp.startsWith('.lockstep/') || rp === '.git' || rp.startsWith('.git/')) {
        return this.error(`'${rawPath}' cannot be an output: it is part of the repository's own state`, [...p, i]);
      }
      this.outSites.push({ rp, raw: rawPath, at: [...p, i] });
      for (const b of ['cache', 'persist', 'push'] as const) {
        if (opts[b] !== undefined && typeof opts[b] !== 'boolean') this.error(`'${b}' must be true or false`, [...p, i]);
      }
      if (opts.remote !== undefined && (typeof opts.remote !== 'string' || opts.remote === ''))
        this.error(`'remote' must be the name of a remote`, [...p, i, rawPath, 'remote']);
      const plots = kind === 'plot' ? (variants.length ? variants : [{}]).map((o) => pick(o, PLOT_PROPS)) : undefined;
      const better: { lower?: string[]; higher?: string[] } = {};
      for (const d of ['lower', 'higher'] as const) {
        if (opts[d] === undefined) continue;
        const list = typeof opts[d] === 'string' ? [opts[d]] : opts[d];
        if (!Array.isArray(list) || !list.every((x) => typeof x === 'string' && x !== ''))
          this.error(`'${d}' must be a list of metric names (globs allowed), such as [loss, '*.fn']`, [...p, i, rawPath, d]);
        else better[d] = list as string[];
      }
      outs.push({
        path: rp,
        kind,
        cache: opts.cache !== false,
        persist: opts.persist === true,
        push: opts.push !== false,
        ...(typeof opts.remote === 'string' ? { remote: opts.remote } : {}),
        ...(plots ? { plots } : {}),
        ...(better.lower || better.higher ? { better } : {}),
      });
    });
    return outs;
  }

  private paramsDecls(raw: unknown, p: KeyPath, wdir: string, interp: Interpolator): ParamsDecl[] {
    const byFile = new Map<string, Set<string> | 'all'>();
    const add = (file: string, key: string | 'all', at: KeyPath): void => {
      const tree = this.params.get(file);
      if (!tree) return this.error(`params file '${file}' does not exist`, at);
      this.paramsFilesUsed.add(file);
      if (key !== 'all' && !lookup(tree, key).found) {
        return this.error(`param '${key}' not found in ${file}`, at, { hint: didYouMean(key, allKeys(tree)) });
      }
      const cur = byFile.get(file);
      if (key === 'all' || cur === 'all') byFile.set(file, 'all');
      else (cur ?? (byFile.set(file, new Set()).get(file) as Set<string>)).add(key);
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
    // Values a stage interpolates from params files are params deps too (DVC tracks them for `params show`).
    const declared = new Map([...byFile].map(([f, k]) => [f, k === 'all' ? 'all' : new Set(k)] as const));
    this.lastTracked = interp.used.filter((u) => {
      const d = declared.get(u.file);
      return d !== 'all' && !(d && [...d].some((k) => k === u.key || u.key.startsWith(`${k}.`) || u.key.startsWith(`${k}[`)));
    });
    for (const u of interp.used) {
      const cur = byFile.get(u.file);
      if (cur !== 'all') (cur ?? (byFile.set(u.file, new Set()).get(u.file) as Set<string>)).add(u.key);
    }
    return [...byFile.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([file, keys]) => ({ file, keys: keys === 'all' ? 'all' : withoutCovered([...keys]).sort() }));
  }
}

/** `train.lr` adds nothing when `train` is tracked whole; recording both would write the value twice in the lock. */
function withoutCovered(keys: string[]): string[] {
  const set = new Set(keys);
  return keys.filter((k) => {
    for (let i = k.indexOf('.'); i > 0; i = k.indexOf('.', i + 1)) if (set.has(k.slice(0, i))) return false;
    for (let i = k.indexOf('['); i > 0; i = k.indexOf('[', i + 1)) if (set.has(k.slice(0, i))) return false;
    return true;
  });
}

/** The first key of `incoming` that a scope already defines as a value (mappings may be extended, as DVC merges them). */
function redefinition(existing: readonly Scope[], incoming: ParamsTree, prefix = ''): { key: string; source: string } | undefined {
  for (const [k, v] of Object.entries(incoming)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const holders = existing.filter((s) => lookup(s.data, key).found);
    const leaf = holders.find((s) => {
      const r = lookup(s.data, key);
      return !(r.found && isPlainObject(r.value) && isPlainObject(v));
    });
    if (leaf) return { key, source: leaf.source ?? 'vars' };
    if (holders.length && isPlainObject(v)) {
      const deeper = redefinition(holders, v as ParamsTree, key);
      if (deeper) return deeper;
    }
  }
  return undefined;
}

function withScopes(interp: Interpolator, scopes: Scope[]): Interpolator {
  let out = interp;
  for (const s of [...scopes].reverse()) out = out.withScope(s);
  return out;
}

/**
 * DVC's names for foreach stages: a mapping's keys; a list's indexes when any item is a
 * list or mapping; otherwise the values themselves, so a repeated value names one stage
 * (DVC builds a dict keyed by the value: the first position, the last item).
 */
export function foreachEntries(items: unknown): [string, unknown][] | undefined {
  if (isPlainObject(items)) return Object.entries(items);
  if (!Array.isArray(items)) return undefined;
  if (items.some((x) => x !== null && typeof x === 'object')) return items.map((x, i) => [String(i), x]);
  const byName = new Map<string, unknown>();
  for (const x of items) byName.set(pyStr(x), x);
  return [...byName.entries()];
}

/** Python's str() of a scalar, as DVC uses it for generated names (`true`, not `True`, for booleans). */
function pyStr(v: unknown): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return String(v);
}

export function matrixEntries(m: Record<string, unknown[]>): [string, Record<string, unknown>][] {
  let acc: [string[], Record<string, unknown>][] = [[[], {}]];
  for (const [name, values] of Object.entries(m)) {
    const next: typeof acc = [];
    for (const [keys, item] of acc) {
      values.forEach((v, i) => {
        const key = v === null || typeof v !== 'object' ? pyStr(v) : `${name}${i}`;
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
