import { Ajv, type ErrorObject } from 'ajv';
import type { ModelBundle } from '../lib/prediction/predict.js';
import { MAX_BATCH, recordSchema } from './request-schema.js';

export interface FieldProblem {
  /** Index of the record in a batch (0 for a single record). */
  readonly record: number;
  readonly field: string;
  readonly message: string;
}

/**
 * The validator Fastify checks /predict bodies with (app.ts hands it this instance), and the one that
 * names every problem when that check fails: one schema, every error collected, nothing coerced or removed.
 */
export const schemaAjv = new Ajv({ allErrors: true, strict: false, coerceTypes: false, removeAdditional: false });
schemaAjv.addSchema(recordSchema);
const checkRecord = schemaAjv.getSchema('LeadRecord')!;

const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'number' && Number.isInteger(v) ? 'integer' : typeof v);
const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : `${kind(v)} ${JSON.stringify(v)}`);

function describe(e: ErrorObject, rec: Readonly<Record<string, unknown>>, index: number): FieldProblem {
  const p = e.params as { missingProperty?: string; additionalProperty?: string; type?: string | string[] };
  if (e.keyword === 'required') return { record: index, field: p.missingProperty ?? '', message: 'is required' };
  if (e.keyword === 'additionalProperties') return { record: index, field: p.additionalProperty ?? '', message: 'is not a lead field' };
  const field = e.instancePath.replace(/^\//, '').replace(/~1/g, '/').replace(/~0/g, '~');
  if (e.keyword === 'type' && field) {
    const types = ([] as string[]).concat(p.type ?? []);
    const named = types.filter((t) => t !== 'null').join(' or ');
    return {
      record: index,
      field,
      message: `must be ${named}${types.includes('null') ? ' (or null)' : ''}, got ${show(Object.getOwnPropertyDescriptor(rec, field)?.value)}`,
    };
  }
  if (e.keyword === 'type') return { record: index, field: '', message: `a record must be a JSON object, got ${kind(rec)}` };
  return { record: index, field, message: e.message ?? 'is invalid' };
}

/** The categories the model version knows, per column (what one-hot encoding and clean accept). */
const known = new WeakMap<ModelBundle, ReadonlyMap<string, ReadonlySet<string>>>();
function allowedValues(b: ModelBundle): ReadonlyMap<string, ReadonlySet<string>> {
  let m = known.get(b);
  if (!m) known.set(b, (m = new Map(b.features.oneHot.map((e) => [e.column, new Set(e.categories.map(String))]))));
  return m;
}

/**
 * One raw record against the request schema (required fields, unknown fields,
 * types) and the model's allowed category values, naming each field. Keys are
 * only ever looked up as own properties, so a field named `constructor` or
 * `__proto__` is just an unknown field.
 */
function recordProblems(rec: unknown, index: number, bundle: ModelBundle): FieldProblem[] {
  if (kind(rec) !== 'object') return [{ record: index, field: '', message: `a record must be a JSON object, got ${kind(rec)}` }];
  const r = rec as Readonly<Record<string, unknown>>;
  const problems = checkRecord(r) ? [] : (checkRecord.errors ?? []).map((e) => describe(e, r, index));
  return [...problems, ...categoryProblems(r, index, bundle, new Set(problems.map((p) => p.field)))];
}

/** Values the model version cannot encode, in a record whose shape is already checked. */
export function categoryProblems(
  r: Readonly<Record<string, unknown>>,
  index: number,
  bundle: ModelBundle,
  skip: ReadonlySet<string> = new Set(),
): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const badFields = skip;
  const allowed = allowedValues(bundle);
  for (const [k, v] of Object.entries(r)) {
    if (badFields.has(k)) continue;
    if (typeof v === 'number' && !Number.isFinite(v)) problems.push({ record: index, field: k, message: 'must be a finite number' });
    const values = allowed.get(k);
    if (values && v !== null && v !== '' && !values.has(String(v))) {
      problems.push({ record: index, field: k, message: `${JSON.stringify(v)} is not a known value (known: ${[...values].join(', ')})` });
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
