import { Prng } from '../prng.js';
import type { Label } from './features.js';

export interface SplitIndices {
  readonly train: readonly number[];
  readonly test: readonly number[];
}

function indicesByClass(y: readonly Label[]): [number[], number[]] {
  const byClass: [number[], number[]] = [[], []];
  y.forEach((label, i) => byClass[label].push(i));
  return byClass;
}

/**
 * Stratified train/test split. The test size is ceil(test_size · n) like
 * sklearn, shared between the classes in proportion (largest remainders get
 * the leftover rows). Indices come back in ascending order.
 */
export function stratifiedSplit(y: readonly Label[], testSize: number, seed: number): SplitIndices {
  if (!(testSize > 0 && testSize < 1)) throw new Error(`test_size must be between 0 and 1, got ${testSize}`);
  const n = y.length;
  const nTest = Math.ceil(testSize * n);
  const classes = indicesByClass(y);
  if (nTest >= n || classes.some((c) => c.length < 2)) {
    throw new Error(`cannot split ${n} rows (${classes[0].length} zeros, ${classes[1].length} ones) with test_size ${testSize}: each class needs 2 rows and both parts one`);
  }
  const exact = classes.map((c) => (nTest * c.length) / n);
  const counts = exact.map(Math.floor);
  let left = nTest - counts[0]! - counts[1]!;
  for (const k of [0, 1].sort((a, b) => exact[b]! - counts[b]! - (exact[a]! - counts[a]!) || a - b)) {
    if (left > 0) { counts[k]!++; left--; }
  }
  const rng = new Prng(seed);
  const train: number[] = [];
  const test: number[] = [];
  classes.forEach((members, k) => {
    const shuffled = rng.shuffle([...members]);
    test.push(...shuffled.slice(0, counts[k]));
    train.push(...shuffled.slice(counts[k]));
  });
  return { train: train.sort((a, b) => a - b), test: test.sort((a, b) => a - b) };
}

/** Stratified k folds: each class shuffled, then dealt round-robin so every fold gets its share. */
export function stratifiedKFold(y: readonly Label[], k: number, seed: number): SplitIndices[] {
  if (!Number.isInteger(k) || k < 2) throw new Error(`cv must be an integer >= 2, got ${k}`);
  const classes = indicesByClass(y);
  if (classes.some((c) => c.length < k)) {
    throw new Error(`cannot make ${k} stratified folds: a class has only ${Math.min(classes[0].length, classes[1].length)} rows`);
  }
  const rng = new Prng(seed);
  const foldOf = new Array<number>(y.length);
  let offset = 0;
  for (const members of classes) {
    rng.shuffle([...members]).forEach((idx, j) => (foldOf[idx] = (offset + j) % k));
    // Continue the deal where the last class stopped so fold sizes differ by at most one.
    offset = (offset + members.length) % k;
  }
  return Array.from({ length: k }, (_, f) => ({
    train: y.map((_, i) => i).filter((i) => foldOf[i] !== f),
    test: y.map((_, i) => i).filter((i) => foldOf[i] === f),
  }));
}

export function take<T>(items: readonly T[], indices: readonly number[]): T[] {
  return indices.map((i) => items[i]!);
}
