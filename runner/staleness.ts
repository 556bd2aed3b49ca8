import { canonicalJson } from './config/params.js';
import type { LockEntry } from './lockfile.js';
import type { Inputs, Observed } from './observe.js';
import type { ParamValue } from './module-contract.js';

/** Why a stage must run. Pure data, so status, repro and --json share one source of truth. */
export type Reason =
  | { readonly kind: 'never-run' }
  | { readonly kind: 'always-changed' }
  | { readonly kind: 'forced' }
  | { readonly kind: 'cmd-changed'; readonly old: string; readonly new: string }
  | { readonly kind: 'dep-added'; readonly path: string }
  | { readonly kind: 'dep-removed'; readonly path: string }
  | { readonly kind: 'dep-missing'; readonly path: string }
  | { readonly kind: 'dep-changed'; readonly path: string }
  | { readonly kind: 'param-added'; readonly file: string; readonly key: string; readonly value: ParamValue }
  | { readonly kind: 'param-removed'; readonly file: string; readonly key: string }
  | { readonly kind: 'param-changed'; readonly file: string; readonly key: string; readonly old: ParamValue; readonly new: ParamValue }
  | { readonly kind: 'out-added'; readonly path: string }
  | { readonly kind: 'out-removed'; readonly path: string }
  | { readonly kind: 'out-missing'; readonly path: string }
  | { readonly kind: 'out-modified'; readonly path: string }
  | { readonly kind: 'upstream-stale'; readonly stage: string }
  | { readonly kind: 'image-missing'; readonly image: string }
  | { readonly kind: 'image-changed'; readonly image: string; readonly old: string; readonly new: string }
  | { readonly kind: 'image-added'; readonly image: string }
  | { readonly kind: 'image-removed'; readonly image: string };

/**
 * Compare a stage's current inputs and outputs with its lock entry.
 * Pure: no I/O, so it is trivially testable and cheap to call.
 */
export function staleReasons(opts: { lock: LockEntry | undefined; inputs: Inputs; outs: readonly Observed[]; alwaysChanged: boolean }): Reason[] {
  const { lock, inputs, outs } = opts;
  const reasons: Reason[] = [];
  for (const d of inputs.deps) if (d.state.kind === 'missing') reasons.push({ kind: 'dep-missing', path: d.path });
  if (inputs.container && !inputs.container.id) reasons.push({ kind: 'image-missing', image: inputs.container.image });
  if (!lock) return [{ kind: 'never-run' }, ...reasons];
  if (opts.alwaysChanged) reasons.push({ kind: 'always-changed' });
  if (lock.cmd !== inputs.cmd) reasons.push({ kind: 'cmd-changed', old: lock.cmd, new: inputs.cmd });
  imageChanges(lock, inputs, reasons);

  const lockedDeps = new Map(lock.deps.map((d) => [d.path, d]));
  for (const d of inputs.deps) {
    const l = lockedDeps.get(d.path);
    if (!l) reasons.push({ kind: 'dep-added', path: d.path });
    else if (d.state.kind !== 'missing' && d.state.hash !== l.hash) reasons.push({ kind: 'dep-changed', path: d.path });
  }
  const currentDeps = new Set(inputs.deps.map((d) => d.path));
  for (const l of lock.deps) if (!currentDeps.has(l.path)) reasons.push({ kind: 'dep-removed', path: l.path });

  const files = new Set([...Object.keys(inputs.params), ...Object.keys(lock.params)]);
  for (const file of [...files].sort()) {
    const now = inputs.params[file] ?? {};
    const was = lock.params[file] ?? {};
    for (const key of Object.keys(now).sort()) {
      if (!Object.hasOwn(was, key)) reasons.push({ kind: 'param-added', file, key, value: now[key]! });
      else paramChanges(file, key, was[key]!, now[key]!, reasons);
    }
    for (const key of Object.keys(was).sort()) if (!Object.hasOwn(now, key)) reasons.push({ kind: 'param-removed', file, key });
  }

  const lockedOuts = new Map(lock.outs.map((o) => [o.path, o]));
  for (const o of outs) {
    const l = lockedOuts.get(o.path);
    if (!l) reasons.push({ kind: 'out-added', path: o.path });
    else if (o.state.kind === 'missing') reasons.push({ kind: 'out-missing', path: o.path });
    else if (o.state.hash !== l.hash) reasons.push({ kind: 'out-modified', path: o.path });
  }
  const currentOuts = new Set(outs.map((o) => o.path));
  for (const l of lock.outs) if (!currentOuts.has(l.path)) reasons.push({ kind: 'out-removed', path: l.path });
  return reasons;
}

/** The environment is an input: a stage moved into or out of a container, or whose image is another one now, is stale. */
function imageChanges(lock: LockEntry, inputs: Inputs, out: Reason[]): void {
  const was = lock.container;
  const now = inputs.container;
  if (!was && !now) return;
  if (!was) out.push({ kind: 'image-added', image: now!.image });
  else if (!now) out.push({ kind: 'image-removed', image: was.image });
  else if (now.id && now.id !== was.id) out.push({ kind: 'image-changed', image: now.image, old: was.id, new: now.id });
}

const isMapping = (v: ParamValue): v is { readonly [k: string]: ParamValue } => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A tracked section (`params: [train]`) is reported by the leaf keys that changed, not as one opaque blob. */
function paramChanges(file: string, key: string, was: ParamValue, now: ParamValue, out: Reason[]): void {
  if (canonicalJson(was) === canonicalJson(now)) return;
  if (!isMapping(was) || !isMapping(now)) {
    out.push({ kind: 'param-changed', file, key, old: was, new: now });
    return;
  }
  for (const k of Object.keys(now).sort()) {
    if (!Object.hasOwn(was, k)) out.push({ kind: 'param-added', file, key: `${key}.${k}`, value: now[k]! });
    else paramChanges(file, `${key}.${k}`, was[k]!, now[k]!, out);
  }
  for (const k of Object.keys(was).sort()) if (!Object.hasOwn(now, k)) out.push({ kind: 'param-removed', file, key: `${key}.${k}` });
}

export function describeReason(r: Reason): string {
  switch (r.kind) {
    case 'never-run':
      return 'never run';
    case 'always-changed':
      return 'always_changed is set';
    case 'forced':
      return 'forced';
    case 'cmd-changed':
      return 'cmd changed';
    case 'dep-added':
      return `dep added: ${r.path}`;
    case 'dep-removed':
      return `dep removed: ${r.path}`;
    case 'dep-missing':
      return `dep missing: ${r.path}`;
    case 'dep-changed':
      return `dep changed: ${r.path}`;
    case 'param-added':
      return `param added: ${r.key} = ${show(r.value)} (${r.file})`;
    case 'param-removed':
      return `param removed: ${r.key} (${r.file})`;
    case 'param-changed':
      return `param changed: ${r.key}: ${show(r.old)} -> ${show(r.new)} (${r.file})`;
    case 'out-added':
      return `out added: ${r.path}`;
    case 'out-removed':
      return `out removed: ${r.path}`;
    case 'out-missing':
      return `out missing: ${r.path}`;
    case 'out-modified':
      return `out modified: ${r.path}`;
    case 'upstream-stale':
      return `upstream stale: ${r.stage}`;
    case 'image-missing':
      return `image missing: ${r.image}`;
    case 'image-changed':
      return `image changed: ${r.image} ${r.old} → ${r.new}`;
    case 'image-added':
      return `container added: ${r.image}`;
    case 'image-removed':
      return `container removed: ${r.image}`;
  }
}

function show(v: ParamValue): string {
  return typeof v === 'string' ? JSON.stringify(v) : canonicalJson(v);
}
