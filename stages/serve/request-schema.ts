import { CONTINUOUS_COLUMNS, RAW_COLUMNS } from '../lib/schema.js';
import { RAW_REQUIRED } from '../lib/predict.js';

/** Most a single request may carry; bigger batches belong to `leads predict`. */
export const MAX_BATCH = 1000;

const CATEGORY = { type: ['string', 'integer', 'boolean'] };

/**
 * One raw lead record as JSON (the raw_data.csv columns). The schema checks
 * shapes and types; allowed category values depend on the model version, so
 * they are checked by the same code as batch prediction.
 */
export const recordSchema = {
  type: 'object',
  additionalProperties: false,
  required: [...RAW_REQUIRED],
  properties: Object.fromEntries(
    RAW_COLUMNS.map((c) => [c, (CONTINUOUS_COLUMNS as readonly string[]).includes(c) ? { type: ['number', 'null'] } : { ...CATEGORY, type: [...CATEGORY.type, 'null'] }]),
  ),
} as const;

export const predictBodySchema = {
  anyOf: [recordSchema, { type: 'array', minItems: 1, maxItems: MAX_BATCH, items: recordSchema }],
} as const;
