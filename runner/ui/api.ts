import { openWorkspace, type Workspace } from '../workspace.js';
import { UserError } from '../errors.js';
import { gitRevParse } from '../git.js';
import { diffFlat } from '../metrics/diff.js';
import { metricsFilesOf, paramsFilesOf, readFlat } from '../metrics/read.js';
import { parseRevision, WORKSPACE } from '../revision.js';
import { computeStatus } from '../status.js';
import { readDurations } from '../durations.js';
import { describeReason } from '../staleness.js';
import { readEvents } from '../events.js';
import { dagSvg, type DagNode } from '../plots/dag-svg.js';
import { ExpStore } from '../exp/store.js';
import { labelCandidates, paramsOfRecord, rowsOf, selectColumns, type Rows } from '../exp/columns.js';
import { declaredDirections, resultMetricsFiles } from '../exp/show.js';
import { ModelRegistry, parseStage } from '../../stages/lib/registry/registry.js';
import { RunStore } from '../../stages/lib/registry/run-store.js';
import { syncWithWorkspace } from '../../stages/lib/registry/workspace-sync.js';
import { readCachedFile } from '../api.js';

/**
 * What the pages show, as plain JSON. Every function opens the workspace
 * afresh: the UI must show what is on disk now, whatever ran in a terminal.
 */

type PerFile = Record<string, Record<string, unknown>>;

/** A client mistake (unknown experiment, bad stage name): answered with this status, never 500. */
export class ClientError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

function open(root: string): Workspace {
  return openWorkspace(root, { checkDeps: false });
}

interface Source {
  readonly name: string;
  readonly kind: 'workspace' | 'rev' | 'exp';
  readonly status: string;
  readonly params: PerFile;
  readonly metrics: PerFile;
}

/** HEAD's params and metrics, by commit: reading them costs a few `git show`s, and HEAD rarely moves. */
const headMemo = new Map<string, Source>();

/** The workspace and HEAD, as rows beside the experiments (DVC's `exp show` does the same). */
function baseSources(ws: Workspace): Source[] {
  const pf = paramsFilesOf(ws);
  const mf = metricsFilesOf(ws);
  const out: Source[] = [
    { name: 'workspace', kind: 'workspace', status: 'workspace', params: readFlat(ws, pf, WORKSPACE, false), metrics: readFlat(ws, mf, WORKSPACE, true) },
  ];
  const sha = gitRevParse(ws.root, 'HEAD');
  if (sha) {
    const key = `${ws.root}\0${sha}\0${pf.join()}\0${mf.join()}`;
    if (!headMemo.has(key)) {
      const head = parseRevision(ws.root, 'HEAD');
      headMemo.set(key, { name: 'HEAD', kind: 'rev', status: 'committed', params: readFlat(ws, pf, head, false), metrics: readFlat(ws, mf, head, true) });
    }
    out.push(headMemo.get(key)!);
  }
  return out;
}

export function experimentsData(root: string) {
  const ws = open(root);
  const recs = new ExpStore(ws.stateDir).list();
  const base = baseSources(ws);
  const t: Rows = rowsOf(recs, base[0]!.params, base);
  const declared = declaredDirections(ws, t);
  const all = selectColumns(t, { all: true, declared });
  const shown = new Set(selectColumns(t, { resultFiles: resultMetricsFiles(ws), declared }).map((c) => `${c.kind}:${c.id}`));
  const rows = t.rows.map((r, i) => {
    const rec = i >= base.length ? recs[i - base.length]! : undefined;
    return {
      name: r.name,
      kind: i < base.length ? base[i]!.kind : 'exp',
      status: r.status,
      ...(r.createdAt ? { createdAt: r.createdAt } : {}),
      ...(rec?.durationMs !== undefined ? { durationMs: rec.durationMs } : {}),
      ...(rec?.error ? { error: rec.error } : {}),
      ...(rec ? { overrides: rec.overrides } : {}),
      params: r.params,
      metrics: r.metrics,
    };
  });
  const columns = all.map((c) => ({
    kind: c.kind,
    id: c.id,
    labels: labelCandidates(c),
    file: c.file,
    key: c.key,
    ...(c.direction ? { direction: c.direction } : {}),
    constant: c.constant,
    default: shown.has(`${c.kind}:${c.id}`),
  }));
  return { rows, columns };
}

/** Params/metrics diff and overlaid plots of a few rows (experiments, `workspace`, git revisions). */
export async function compareData(root: string, names: readonly string[]) {
  if (names.length < 2 || names.length > 12) throw new ClientError(400, 'choose between 2 and 12 rows to compare');
  const ws = open(root);
  const store = new ExpStore(ws.stateDir);
  const base = baseSources(ws);
  const sources = names.map((n) => {
    const b = base.find((s) => s.name === n);
    if (b) return b;
    if (!store.exists(n)) throw new ClientError(404, `no experiment named '${n}'`);
    const rec = store.get(n);
    return { name: n, params: paramsOfRecord(rec, base[0]!.params) as PerFile, metrics: (rec.metrics ?? {}) as PerFile };
  });
  const [a, ...rest] = sources;
  const diffs = rest.map((b) => ({ a: a!.name, b: b.name, params: diffFlat(a!.params, b.params, false), metrics: diffFlat(a!.metrics, b.metrics, false) }));
  const plots = await overlaidPlots(ws, names);
  return { names, diffs, ...plots };
}

/** The declared plots with every chosen row as its own series, through the same code as `plots diff --json`. */
async function overlaidPlots(ws: Workspace, names: readonly string[]): Promise<{ plots: { path: string; spec: Record<string, unknown> }[]; notes: string[] }> {
  const { buildPlots } = await import('../plots/collect.js');
  const { declaredPlots } = await import('../plots/decls.js');
  const notes: string[] = [];
  const store = new ExpStore(ws.stateDir);
  const revisions = names.filter((n) => n === 'workspace' || (n === 'HEAD' && !store.exists(n)));
  const experiments = names.filter((n) => !revisions.includes(n));
  // One plot at a time: a plot some row lacks must not hide the others.
  const plots: { path: string; spec: Record<string, unknown> }[] = [];
  for (const d of declaredPlots(ws.pipeline)) {
    let built: ReturnType<typeof buildPlots>;
    try {
      built = buildPlots(ws, { diff: true, targets: [d.id], revisions, experiments, cwd: ws.root });
    } catch (e) {
      if (e instanceof UserError) {
        notes.push(e.message);
        continue;
      }
      throw e;
    }
    // Image plots have no spec to overlay; the report (plots diff) shows them.
    for (const p of built.plots) {
      if ('missing' in p) notes.push(p.missing);
      else if ('error' in p) notes.push(...p.diagnostics);
      else if (p.spec) plots.push({ path: p.path, spec: interactive(p.spec) });
    }
  }
  return { plots, notes };
}

/** Tooltips, zoom and pan on the scales, and a legend that toggles series. */
export function interactive(spec: Record<string, unknown>): Record<string, unknown> {
  const s = structuredClone(spec) as Record<string, unknown> & { encoding?: Record<string, unknown>; layer?: Record<string, unknown>[]; mark?: unknown };
  const hasSeries = (enc: Record<string, unknown> | undefined) => !!enc && 'color' in enc;
  const addTo = (unit: Record<string, unknown> & { encoding?: Record<string, unknown>; mark?: unknown }, first: boolean) => {
    const mark = typeof unit.mark === 'string' ? { type: unit.mark } : ((unit.mark as Record<string, unknown>) ?? {});
    unit.mark = { ...mark, tooltip: { content: 'data' } };
    if (!first) return;
    const params: unknown[] = [{ name: 'zoom', select: 'interval', bind: 'scales' }];
    if (hasSeries(unit.encoding ?? s.encoding) && mark.type !== 'rect') {
      params.push({ name: 'pick', select: { type: 'point', fields: ['series'] }, bind: 'legend' });
      unit.encoding = { ...(unit.encoding ?? {}), opacity: { condition: { param: 'pick', value: 1 }, value: 0.12 } };
    }
    if (mark.type !== 'rect' && mark.type !== 'text') unit.params = [...((unit.params as unknown[]) ?? []), ...params];
  };
  if (Array.isArray(s.layer)) s.layer.forEach((l, i) => addTo(l as never, i === 0));
  else if (s.mark) addTo(s as never, true);
  return s;
}

export async function pipelineData(root: string) {
  const ws = open(root);
  const g = ws.graph;
  const order = g.order;
  let status;
  let statusError: string | undefined;
  try {
    status = new Map((await computeStatus(root, [])).map((s) => [s.name, s]));
  } catch (e) {
    // A repro in progress can leave a dep missing for a moment; show the graph and say why states are unknown.
    if (!(e instanceof UserError)) throw e;
    statusError = e.message;
    status = new Map();
  }
  const durations = readDurations(ws.stateDir);
  const stages = order.map((n) => {
    const s = status.get(n);
    const state: DagNode['state'] = s?.frozen ? 'frozen' : !ws.lock.get(n) ? 'never run' : s && s.reasons.length ? 'stale' : 'up to date';
    const st = ws.pipeline.stages.get(n)!;
    return {
      name: n,
      state,
      why: s?.reasons.map(describeReason) ?? [],
      upstream: [...g.upstream(n)].sort(),
      ...(durations[n] ? { last: durations[n] } : {}),
      command: st.command.kind === 'shell' ? st.command.commands.join(' && ') : `module ${st.command.module}`,
    };
  });
  const nodes = new Map(stages.map((s) => [s.name, { name: s.name, state: s.state, why: s.why.join('; '), lastMs: s.last?.ms }]));
  const svg = dagSvg(order, (n) => [...g.upstream(n)].sort(), nodes);
  return { stages, svg, runInProgress: runInProgress(ws.stateDir), ...(statusError ? { statusError } : {}) };
}

/** The event log's run has not ended and its process is alive (a killed repro writes no end). */
function runInProgress(stateDir: string): boolean {
  const events = readEvents(stateDir);
  const run = events.find((e) => e.kind === 'run');
  if (!run || run.kind !== 'run' || events.some((e) => e.kind === 'end')) return false;
  try {
    process.kill(run.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs and versions follow the workspace's outputs, as in `leads` (filed and registered when first read). */
export async function runsData(root: string) {
  await syncWithWorkspace(root);
  return { runs: new RunStore(root).list().reverse() };
}

export async function registryData(root: string) {
  await syncWithWorkspace(root);
  return { versions: new ModelRegistry(root).list() };
}

/** An artifact's bytes from the cache, by the content hash a run or a version names. */
export async function artifactBytes(root: string, hash: string): Promise<Buffer> {
  if (!/^[0-9a-f]{16}$/.test(hash)) throw new ClientError(400, `'${hash}' is not a content hash (16 hex digits)`);
  const bytes = await readCachedFile(root, hash);
  if (!bytes) throw new ClientError(404, `object ${hash} is not in the local cache (collected, or never pulled: lockstep pull)`);
  return bytes;
}

/**
 * Move a registry version to a stage, with the rule `leads registry promote`
 * applies (only a Staging version goes to Production), through ModelRegistry's
 * public methods only.
 */
export async function transitionVersion(root: string, version: number, to: string) {
  let stage;
  try {
    stage = parseStage(to);
  } catch (e) {
    throw new ClientError(400, (e as Error).message);
  }
  const reg = new ModelRegistry(root);
  if (!reg.list().some((v) => v.version === version)) throw new ClientError(404, `no model version ${version} in the registry`);
  try {
    return await reg.transition(version, stage, stage === 'Production' ? { requireFrom: 'Staging' } : {});
  } catch (e) {
    throw new ClientError(409, (e as Error).message);
  }
}
