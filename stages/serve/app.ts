import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { predictRows } from '../lib/predict.js';
import type { ModelHolder } from './model-holder.js';
import { bodyProblems } from './validate.js';

export interface ServeOptions {
  /** Largest request body accepted, in bytes. */
  readonly bodyLimit: number;
  /** A request taking longer than this is answered 408 and its connection closed. */
  readonly requestTimeoutMs: number;
  /** pino level, or false for no request logs (benchmarks). */
  readonly logLevel: string | false;
}

export const DEFAULT_SERVE_OPTIONS: ServeOptions = { bodyLimit: 256 * 1024, requestTimeoutMs: 10_000, logLevel: 'info' };

/** The prediction service: the same `predictRows` as `leads predict`, behind a validating HTTP API. */
export function buildApp(holder: ModelHolder, opts: ServeOptions = DEFAULT_SERVE_OPTIONS): FastifyInstance {
  const app = Fastify({
    logger: opts.logLevel === false ? false : { level: opts.logLevel },
    bodyLimit: opts.bodyLimit,
    requestTimeout: opts.requestTimeoutMs,
    // Node's own timeouts win over Fastify's (headers: 60 s) and are checked only every 30 s by default:
    // hand them to the HTTP server and check at a quarter of the timeout, so --timeout-ms means what it says.
    http: { connectionsCheckingInterval: Math.max(100, Math.min(1000, opts.requestTimeoutMs / 4)), requestTimeout: opts.requestTimeoutMs, headersTimeout: opts.requestTimeoutMs },
    return503OnClosing: true,
  });

  // Malformed JSON, oversized bodies and wrong content types: a clear message, never a stack trace.
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    const message =
      err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? `the request body is larger than the ${opts.bodyLimit} bytes allowed; send smaller batches`
      : err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'send JSON (content-type: application/json)'
      : err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'the request body is empty; send a lead record or a list of them'
      : err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ? 'malformed JSON: the body could not be parsed'
      : status === 400 && err instanceof SyntaxError ? `malformed JSON: ${err.message}`
      : status >= 500 ? 'internal error' : err.message;
    void reply.status(status).send({ error: message });
  });

  app.get('/health', async () => ({ status: 'ok', version: holder.current.version.version }));

  app.get('/model', async () => {
    const v = holder.current.version;
    return { version: v.version, name: v.name, family: v.family, stage: v.stage, following: holder.following, metrics: v.metrics, data_checksum: v.data_checksum, model_md5: v.model_md5, created_at: v.created_at };
  });

  app.post('/predict', async (req, reply) => {
    const model = holder.current; // one model for the whole request, even if a reload swaps it meanwhile
    const checked = bodyProblems(req.body, model.bundle);
    if ('problems' in checked) return reply.status(400).send({ error: 'invalid request', problems: checked.problems });
    const outcome = await predictRows(checked.records, { mode: 'raw', bundle: model.bundle });
    if (!outcome.ok) {
      return reply.status(400).send({ error: 'invalid request', problems: outcome.errors.map((e) => ({ record: e.row - 1, field: '', message: e.message })) });
    }
    const results = outcome.predictions.map((p) => ({ prediction: p.prediction, probability: p.probability, model_version: model.version.version }));
    return checked.single ? results[0] : { predictions: results };
  });

  app.post('/reload', async (req, reply) => {
    try {
      const r = await holder.reload();
      return { reloaded: r.changed, version: r.version };
    } catch (e) {
      // Nothing to load (say, the stage was emptied): keep answering with the model we have.
      req.log.warn({ err: e }, 'reload failed');
      return reply.status(409).send({ error: `reload failed, still serving version ${holder.current.version.version}: ${(e as Error).message}` });
    }
  });

  return app;
}
