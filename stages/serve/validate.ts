import type { ModelBundle } from '../lib/predict.js';
import { MAX_BATCH, recordSchema } from './request-schema.js';

export interface FieldProblem {
  /** Index of the record in a batch (0 for a single record). */
  readonly record: number;
  readonly field: string;
  readonly message: string;
}

type JsonType = 'string' | 'integer' | 'number' | 'boolean' | 'null' | 'object' | 'array';

function jsonType(v: unknown): JsonType {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v as JsonType;
}

function typeOk(v: unknown, allowed: readonly string[]): boolean {
  const t = jsonType(v);
  return allowed.includes(t) || (t === 'integer' && allowed.includes('number'));
}

const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : `${jsonType(v)} ${JSON.stringify(v)}`);

/** The categories the model version knows, per column (what one-hot encoding and clean accept). */
function allowedValues(b: ModelBundle): Map<string, Set<string>> {
  return new Map(b.features.oneHot.map((e) => [e.column, new Set(e.categories.map(String))]));
}

const cache = new WeakMap<ModelBundle, Map<string, Set<string>>>();

/**
 * Check one raw record against the request schema (required fields, unknown
 * fields, types) and the model's allowed category values, naming each field.
 */
export function recordProblems(rec: unknown, index: number, bundle: ModelBundle): FieldProblem[] {
  if (jsonType(rec) !== 'object') return [{ record: index, field: '', message: `a record must be a JSON object, got ${jsonType(rec)}` }];
  const r = rec as Record<string, unknown>;
  const problems: FieldProblem[] = [];
  const props = recordSchema.properties as Record<string, { type: readonly string[] }>;
  for (const f of recordSchema.required) if (!Object.hasOwn(r, f)) problems.push({ record: index, field: f, message: 'is required' });
  let allowed = cache.get(bundle);
  if (!allowed) cache.set(bundle, (allowed = allowedValues(bundle)));
  for (const [k, v] of Object.entries(r)) {
    const spec = props[k];
    if (!spec) {
      problems.push({ record: index, field: k, message: 'is not a lead field' });
      continue;
    }
    if (!typeOk(v, spec.type)) {
      problems.push({ record: index, field: k, message: `must be ${spec.type.filter((t) => t !== 'null').join(' or ')}${spec.type.includes('null') ? ' (or null)' : ''}, got ${show(v)}` });
      continue;
    }
    if (typeof v === 'number' && !Number.isFinite(v)) problems.push({ record: index, field: k, message: 'must be a finite number' });
    const known = allowed.get(k);
    if (known && v !== null && v !== '' && !known.has(String(v))) {
      problems.push({ record: index, field: k, message: `${JSON.stringify(v)} is not a known value (known: ${[...known].join(', ')})` });
    }
  }
  return problems;
}

/** The body of POST /predict: one record or a batch of them. */
export function bodyProblems(body: unknown, bundle: ModelBundle): { records: Record<string, unknown>[]; single: boolean } | { problems: FieldProblem[] } {
  if (Array.isArray(body)) {
    if (body.length === 0) return { problems: [{ record: 0, field: '', message: 'the batch is empty' }] };
    if (body.length > MAX_BATCH) return { problems: [{ record: 0, field: '', message: `a batch holds at most ${MAX_BATCH} records, got ${body.length}` }] };
    const problems = body.flatMap((r, i) => recordProblems(r, i, bundle));
    return problems.length ? { problems } : { records: body as Record<string, unknown>[], single: false };
  }
  const problems = recordProblems(body, 0, bundle);
  return problems.length ? { problems } : { records: [body as Record<string, unknown>], single: true };
}
