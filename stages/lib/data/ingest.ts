import fs from 'node:fs';
import path from 'node:path';
import { md5OfBytes } from './checksum.js';
import { writeOutput } from '../stage-files.js';

export type Source = { readonly kind: 'url'; readonly url: string } | { readonly kind: 'file'; readonly path: string };

/** http(s) URLs are fetched; anything else is a path, relative to the repository root. */
export function parseSource(source: string, root: string): Source {
  if (/^https?:\/\//i.test(source)) return { kind: 'url', url: source };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) throw new IngestError(`ingest.source '${source}': only http(s) URLs and local paths are supported`);
  return { kind: 'file', path: path.resolve(root, source) };
}

class IngestError extends Error {}

const HOW_TO_FIX =
  'Point ingest at a local copy of raw_data.csv, e.g. `lockstep exp run -S ingest.source=../shared/data/raw_data.csv`, ' +
  'or set ingest.source in params.yaml to its path (relative to the repository root).';

async function fetchBytes(url: string, timeoutMs: number): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const why = err.name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000} s` : (err.cause?.code ?? err.cause?.message ?? err.message);
    throw new IngestError(`cannot download ${url}: ${why}. ${HOW_TO_FIX}`);
  }
  if (!res.ok) throw new IngestError(`cannot download ${url}: HTTP ${res.status} ${res.statusText}. ${HOW_TO_FIX}`);
  return new Uint8Array(await res.arrayBuffer());
}

function readLocal(file: string): Uint8Array {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new IngestError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message}. ${HOW_TO_FIX}`);
  }
}

/** The bytes of `file` when it exists and has the expected md5. */
function verifiedCopy(file: string, md5: string): Uint8Array | undefined {
  try {
    const data = fs.readFileSync(file);
    return md5OfBytes(data) === md5.toLowerCase() ? data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Fetch or copy the data, check its md5 (the data's identity), and write it
 * only if it matches. Data already at `dest` with that md5 is kept as it is:
 * switching the source between the URL and a local copy of the same data
 * needs no download, and works offline.
 */
export async function ingest(opts: { source: Source; md5: string; dest: string; timeoutMs: number }): Promise<{ bytes: number; md5: string; reused: boolean }> {
  const present = verifiedCopy(opts.dest, opts.md5);
  if (present) return { bytes: present.length, md5: opts.md5.toLowerCase(), reused: true };
  const data = opts.source.kind === 'url' ? await fetchBytes(opts.source.url, opts.timeoutMs) : readLocal(opts.source.path);
  const md5 = md5OfBytes(data);
  if (md5 !== opts.md5.toLowerCase()) {
    const from = opts.source.kind === 'url' ? opts.source.url : opts.source.path;
    throw new IngestError(`${from} has md5 ${md5}, expected ${opts.md5} (ingest.md5): it is not the expected raw_data.csv. ${HOW_TO_FIX}`);
  }
  writeOutput(opts.dest, data);
  return { bytes: data.length, md5, reused: false };
}
