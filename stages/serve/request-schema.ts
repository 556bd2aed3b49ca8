import { CONTINUOUS_COLUMNS, RAW_COLUMNS } from '../lib/data/schema.js';
import { RAW_REQUIRED } from '../lib/prediction/predict.js';

/**
 * The service's API, described once: Fastify validates requests with these
 * schemas, `validate.ts` names each bad field with the same ones, and
 * GET /openapi.json publishes them.
 */

/** Most a single request may carry; bigger batches belong to `leads predict`. */
export const MAX_BATCH = 1000;

const CATEGORY_TYPES = ['string', 'integer', 'boolean', 'null'] as const;

/**
 * One raw lead record as JSON (the raw_data.csv columns). The schema checks
 * shapes and types; allowed category values depend on the model version, so
 * they are checked by the same code as batch prediction.
 */
export const recordSchema = {
  $id: 'LeadRecord',
  title: 'LeadRecord',
  description: 'One lead as raw_data.csv has it. Category values the model version does not know are refused by name.',
  type: 'object',
  additionalProperties: false,
  required: [...RAW_REQUIRED],
  properties: Object.fromEntries(
    RAW_COLUMNS.map((c) => [c, (CONTINUOUS_COLUMNS as readonly string[]).includes(c) ? { type: ['number', 'null'] } : { type: [...CATEGORY_TYPES] }]),
  ),
} as const;

export const predictBodySchema = {
  anyOf: [{ $ref: 'LeadRecord#' }, { type: 'array', minItems: 1, maxItems: MAX_BATCH, items: { $ref: 'LeadRecord#' } }],
} as const;

const predictionSchema = {
  type: 'object',
  required: ['prediction', 'probability', 'model_version'],
  properties: {
    prediction: { type: 'integer', enum: [0, 1], description: '1: the lead is predicted to convert' },
    probability: { type: 'number', minimum: 0, maximum: 1 },
    model_version: { type: 'integer', description: 'the registry version that answered' },
  },
} as const;

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: { type: 'string' },
    problems: {
      type: 'array',
      items: {
        type: 'object',
        required: ['record', 'field', 'message'],
        properties: { record: { type: 'integer' }, field: { type: 'string' }, message: { type: 'string' } },
      },
    },
  },
} as const;

const modelSchema = {
  type: 'object',
  properties: {
    version: { type: 'integer' },
    name: { type: 'string' },
    family: { type: 'string' },
    stage: { type: 'string', enum: ['None', 'Staging', 'Production', 'Archived'], description: "the version's stage in the registry now" },
    following: { type: 'string', description: 'what the service reloads: the workspace model, a version, or a stage' },
    model_md5: { type: 'string' },
    data_checksum: { type: 'string' },
    created_at: { type: 'string' },
    metrics: { type: 'object' },
  },
} as const;

const json = (schema: unknown) => ({ 'application/json': { schema } });
const error = (description: string) => ({ description, content: json({ $ref: '#/components/schemas/Error' }) });

/** OpenAPI 3.1 for the service (served at /openapi.json, rendered at /docs). */
export function openApiDocument(version: string): Record<string, unknown> {
  const { $id: _id, ...record } = recordSchema;
  const body = {
    anyOf: [
      { $ref: '#/components/schemas/LeadRecord' },
      { type: 'array', minItems: 1, maxItems: MAX_BATCH, items: { $ref: '#/components/schemas/LeadRecord' } },
    ],
  };
  return {
    openapi: '3.1.0',
    info: { title: 'leads serve', version, description: 'Lead-conversion predictions from the model registry.' },
    paths: {
      '/predict': {
        post: {
          summary: 'Predict one lead, or a batch of up to 1,000',
          requestBody: { required: true, content: json(body) },
          responses: {
            200: {
              description: 'one prediction for one record; {predictions: [...]} for a batch',
              content: json({
                anyOf: [
                  { $ref: '#/components/schemas/Prediction' },
                  { type: 'object', properties: { predictions: { type: 'array', items: { $ref: '#/components/schemas/Prediction' } } } },
                ],
              }),
            },
            400: error('malformed JSON, or records with problems (each named by record index and field)'),
            408: error('the request was not received in time'),
            413: error('the body is larger than the limit'),
            415: error('the body is not JSON'),
          },
        },
      },
      '/model': {
        get: {
          summary: 'The model version being served',
          responses: { 200: { description: 'the version', content: json({ $ref: '#/components/schemas/Model' }) } },
        },
      },
      '/health': {
        get: {
          summary: 'Liveness',
          responses: {
            200: { description: 'ok', content: json({ type: 'object', properties: { status: { type: 'string' }, version: { type: 'integer' } } }) },
          },
        },
      },
      '/reload': {
        post: {
          summary: 'Load what the service follows again (also on SIGHUP)',
          responses: {
            200: {
              description: 'reloaded or unchanged',
              content: json({ type: 'object', properties: { reloaded: { type: 'boolean' }, version: { type: 'integer' } } }),
            },
            409: error('nothing to load; the current version keeps serving'),
          },
        },
      },
      '/openapi.json': { get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1' } } } },
      '/docs': { get: { summary: 'This document as a page', responses: { 200: { description: 'HTML' } } } },
    },
    components: { schemas: { LeadRecord: record, Prediction: predictionSchema, Model: modelSchema, Error: errorSchema } },
  };
}
