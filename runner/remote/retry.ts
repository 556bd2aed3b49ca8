import { RemoteUnavailable } from './errors.js';

/** Errors worth another try: the server or the network hiccupped, not a refusal. */
export class TransientError extends Error {}

const NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);

function isTransient(e: unknown): boolean {
  if (e instanceof TransientError || e instanceof RemoteUnavailable) return true;
  const err = e as { code?: string; cause?: { code?: string }; $metadata?: { httpStatusCode?: number }; name?: string };
  if (err?.name === 'AbortError') return false;
  const code = err?.code ?? err?.cause?.code;
  if (code && NETWORK.has(code)) return true;
  const status = err?.$metadata?.httpStatusCode;
  return status !== undefined && status >= 500;
}

/** Try `fn` up to `attempts` times with exponential backoff, for transient failures only. */
export async function withRetries<T>(fn: () => Promise<T>, attempts = 4, baseMs = 100): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts || !isTransient(e)) throw e;
      await new Promise((r) => setTimeout(r, baseMs * 2 ** (i - 1)));
    }
  }
}
