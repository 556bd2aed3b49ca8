import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { predictRows } from '../lib/prediction/predict.js';
import type { ModelHolder } from './model-holder.js';
import { bodyProblems, categoryProblems, schemaAjv } from './validate.js';
import { openApiDocument, predictBodySchema } from './request-schema.js';
import { docsPage } from './docs-page.js';

/** The routes and their methods: any other method on a known path is 405 with an Allow header, not 404. */
const ROUTES: Readonly<Record<string, readonly string[]>> = {
  '/predict': ['POST'],
  '/reload': ['POST'],
  '/model': ['GET', 'HEAD'],
  '/health': ['GET', 'HEAD'],
  '/openapi.json': ['GET', 'HEAD'],
  '/docs': ['GET', 'HEAD'],
};

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
    http: {
      connectionsCheckingInterval: Math.max(100, Math.min(1000, opts.requestTimeoutMs / 4)),
      requestTimeout: opts.requestTimeoutMs,
      headersTimeout: opts.requestTimeoutMs,
    },
    return503OnClosing: true,
    // A key named __proto__ or constructor is an unknown field like any other (refused by name by the schema),
    // not malformed JSON: parsed as an own property, it never touches a prototype.
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore',
  });
  // JSON only: Fastify also parses text/plain by default, which would turn a wrong content type into a 400.
  app.removeContentTypeParser('text/plain');
  // Fastify validates with the very validator (and schema) that names the problems.
  app.setValidatorCompiler(({ schema }) => schemaAjv.compile(schema));

  // Malformed JSON, oversized bodies and wrong content types: a clear message, never a stack trace.
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    const message =
      err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? `the request body is larger than the ${opts.bodyLimit} bytes allowed; send smaller batches`
        : err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
          ? 'send JSON (content-type: application/json)'
          : err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
            ? 'the request body is empty; send a lead record or a list of them'
            : err.code === 'FST_ERR_CTP_INVALID_JSON_BODY'
              ? 'malformed JSON: the body could not be parsed'
              : status === 400 && err instanceof SyntaxError
                ? `malformed JSON: ${err.message}`
                : err.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH'
                  ? 'the content-length does not match the body'
                  : status >= 500
                    ? 'internal error'
                    : err.message;
    void reply.status(status).send({ error: message });
  });

  app.setNotFoundHandler((req, reply) => {
    const allowed = ROUTES[req.url.split('?')[0]!];
    if (allowed)
      return reply
        .status(405)
        .header('allow', allowed.join(', '))
        .send({ error: `${req.method} is not allowed on ${req.url.split('?')[0]}; use ${allowed.filter((m) => m !== 'HEAD').join(' or ')}` });
    return reply.status(404).send({ error: `no such endpoint: ${req.method} ${req.url.split('?')[0]} (see GET /docs)` });
  });

  const openapi = openApiDocument(String(process.env.npm_package_version ?? '0.1.0'));
  app.get('/openapi.json', async () => openapi);
  const docs = docsPage(openapi);
  app.get('/docs', async (_req, reply) => reply.type('text/html; charset=utf-8').send(docs));

  app.get('/health', async () => ({ status: 'ok', version: holder.current.version.version }));

  app.get('/model', async () => {
    // The stage is read from the registry now: a promotion or archive since loading shows at once.
    const v = holder.currentRecord();
    return {
      version: v.version,
      name: v.name,
      family: v.family,
      stage: v.stage,
      following: holder.following,
      metrics: v.metrics,
      data_checksum: v.data_checksum,
      model_md5: v.model_md5,
      created_at: v.created_at,
    };
  });

  app.post('/predict', { schema: { body: predictBodySchema }, attachValidation: true }, async (req, reply) => {
    const model = holder.current; // one model for the whole request, even if a reload swaps it meanwhile
    let checked: ReturnType<typeof bodyProblems>;
    if (req.validationError) {
      // The schema said no: name every problem, record by record and field by field.
      checked = bodyProblems(req.body, model.bundle);
      if (!('problems' in checked)) checked = { problems: [{ record: 0, field: '', message: req.validationError.message }] };
    } else {
      const single = !Array.isArray(req.body);
      const records = (single ? [req.body] : req.body) as Record<string, unknown>[];
      const problems = records.flatMap((r, i) => categoryProblems(r, i, model.bundle));
      checked = problems.length ? { problems } : { records, single };
    }
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
