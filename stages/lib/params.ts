import type { ParamValue } from '../../runner/api.js';

/**
 * Typed access to a stage's params with errors that name the dotted key, so a
 * typo in params.yaml reads as "train.cv must be an integer >= 2", not NaN.
 */
export class ParamReader {
  constructor(
    private readonly value: ParamValue | undefined,
    private readonly where: string,
  ) {}

  static of(params: { readonly [key: string]: ParamValue }, section: string): ParamReader {
    return new ParamReader(params[section], section);
  }

  get(key: string): ParamReader {
    const obj = this.value;
    const child = obj !== null && typeof obj === 'object' && !Array.isArray(obj) ? obj[key] : undefined;
    return new ParamReader(child, `${this.where}.${key}`);
  }

  has(key: string): boolean {
    const obj = this.value;
    return obj !== null && typeof obj === 'object' && !Array.isArray(obj) && obj[key] !== undefined;
  }

  raw(): ParamValue | undefined {
    return this.value;
  }

  path(): string {
    return this.where;
  }

  fail(expected: string): never {
    const got = this.value === undefined ? "nothing (is it declared in params.yaml and in the stage's params?)" : JSON.stringify(this.value);
    throw new Error(`params: ${this.where} must be ${expected}, got ${got}`);
  }

  string(): string {
    return typeof this.value === 'string' && this.value !== '' ? this.value : this.fail('a non-empty string');
  }

  number(): number {
    return typeof this.value === 'number' && Number.isFinite(this.value) ? this.value : this.fail('a number');
  }

  int(min = -Infinity): number {
    const v = this.value;
    return typeof v === 'number' && Number.isInteger(v) && v >= min ? v : this.fail(`an integer${min > -Infinity ? ` >= ${min}` : ''}`);
  }

  fraction(): number {
    const v = this.value;
    return typeof v === 'number' && v > 0 && v < 1 ? v : this.fail('a number strictly between 0 and 1');
  }

  list(): ParamReader[] {
    const v = this.value;
    if (!Array.isArray(v) || v.length === 0) this.fail('a non-empty list');
    return v.map((item, i) => new ParamReader(item, `${this.where}[${i}]`));
  }

  /** A date written YYYY-MM-DD (YAML may have parsed it as a string; never as a Date, params are JSON). */
  isoDate(): string {
    const v = this.value;
    if (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v) && parseLooseDate(v) !== undefined) return v;
    return this.fail('a date written YYYY-MM-DD');
  }
}

/** Parse `2024-01-1` or `2024-01-01` to the zero-padded ISO form; undefined if not a real date. */
export function parseLooseDate(text: string): string | undefined {
  const m = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(text.trim());
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return undefined;
  return `${m[1]}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}
