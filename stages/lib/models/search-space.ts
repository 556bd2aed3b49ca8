import type { ParamValue } from '../../../runner/api.js';
import { ParamReader } from '../params.js';
import { Prng } from '../prng.js';

/**
 * One hyperparameter's distribution, written in params.yaml as
 *   a scalar          → fixed value
 *   a list            → uniform choice among the values
 *   {uniform: [a, b]} → continuous U(a, b)
 *   {randint: [a, b]} → integer in a..b inclusive
 */
type Dimension =
  | { readonly kind: 'fixed'; readonly value: number | string }
  | { readonly kind: 'choice'; readonly values: readonly (number | string)[] }
  | { readonly kind: 'uniform'; readonly lo: number; readonly hi: number }
  | { readonly kind: 'randint'; readonly lo: number; readonly hi: number };

export type SearchSpace = Readonly<Record<string, Dimension>>;
export type Candidate = Readonly<Record<string, number | string>>;

function scalar(r: ParamReader): number | string {
  const v = r.raw();
  return typeof v === 'number' || (typeof v === 'string' && v !== '') ? v : r.fail('a number or a string');
}

function bounds(r: ParamReader, integer: boolean): [number, number] {
  const items = r.list();
  if (items.length !== 2) r.fail('[low, high]');
  const [lo, hi] = items.map((i) => (integer ? i.int() : i.number())) as [number, number];
  if (!(lo <= hi)) r.fail('[low, high] with low <= high');
  return [lo, hi];
}

function parseDimension(r: ParamReader): Dimension {
  const v: ParamValue | undefined = r.raw();
  if (Array.isArray(v)) return { kind: 'choice', values: r.list().map(scalar) };
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === 'uniform') {
      const [lo, hi] = bounds(r.get('uniform'), false);
      return { kind: 'uniform', lo, hi };
    }
    if (keys.length === 1 && keys[0] === 'randint') {
      const [lo, hi] = bounds(r.get('randint'), true);
      return { kind: 'randint', lo, hi };
    }
    return r.fail('a value, a list, {uniform: [low, high]} or {randint: [low, high]}');
  }
  return { kind: 'fixed', value: scalar(r) };
}

export function parseSearchSpace(r: ParamReader): SearchSpace {
  const v = r.raw();
  if (v === null || typeof v !== 'object' || Array.isArray(v)) r.fail('a mapping of hyperparameter → distribution');
  return Object.fromEntries(
    Object.keys(v as object)
      .sort()
      .map((k) => [k, parseDimension(r.get(k))]),
  );
}

function grid(space: SearchSpace): Candidate[] | undefined {
  let out: Record<string, number | string>[] = [{}];
  for (const [name, d] of Object.entries(space)) {
    const values = d.kind === 'fixed' ? [d.value] : d.kind === 'choice' ? d.values : undefined;
    if (!values) return undefined;
    out = out.flatMap((c) => values.map((v) => ({ ...c, [name]: v })));
  }
  return out;
}

/**
 * n_iter candidates, as sklearn's ParameterSampler: a space of lists only is
 * sampled without replacement (all of it when n_iter covers the grid);
 * otherwise every dimension is drawn independently.
 */
export function sampleCandidates(space: SearchSpace, nIter: number, seed: number): Candidate[] {
  const rng = new Prng(seed);
  const all = grid(space);
  if (all) return all.length <= nIter ? all : rng.shuffle(all).slice(0, nIter);
  return Array.from({ length: nIter }, () =>
    Object.fromEntries(
      Object.entries(space).map(([name, d]) => {
        switch (d.kind) {
          case 'fixed':
            return [name, d.value];
          case 'choice':
            return [name, d.values[rng.int(0, d.values.length - 1)]!];
          case 'uniform':
            return [name, rng.uniform(d.lo, d.hi)];
          case 'randint':
            return [name, rng.int(d.lo, d.hi)];
        }
      }),
    ),
  );
}
