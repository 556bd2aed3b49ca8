import fs from 'node:fs';
import YAML, { isMap, isScalar, isSeq, LineCounter, type Document, type Node } from 'yaml';
import { UserError, type Diagnostic, type SourceLocation } from '../errors.js';
import { errnoCode } from '../fs-util.js';
import type { ParsedFileCache } from './parsed-cache.js';

/**
 * A parsed YAML file that still knows where each value came from, so that
 * later validation can point at file:line:column.
 */
export class YamlSource {
  private parsed: { doc: Document.Parsed; lines: LineCounter } | undefined;

  private constructor(
    readonly file: string,
    private readonly value: unknown,
    /** Where to re-read the text when positions are needed for a value that came from the cache. */
    private readonly abs: string | undefined,
    parsed?: { doc: Document.Parsed; lines: LineCounter },
  ) {
    this.parsed = parsed;
  }

  /** Parse text; malformed YAML becomes a diagnostic with its position. */
  static parse(file: string, text: string): YamlSource {
    const lines = new LineCounter();
    const doc = YAML.parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) {
      // Later errors are usually echoes of the first one; report that one only.
      const diags: Diagnostic[] = doc.errors.slice(0, 1).map((err) => {
        const pos = err.linePos?.[0];
        return {
          message: `invalid YAML: ${firstLine(err.message)}`,
          location: pos ? { file, line: pos.line, column: pos.col } : { file },
        };
      });
      throw new UserError(diags);
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 1000 });
    } catch (e) {
      // An alias bomb ("billion laughs") is refused by the parser's alias limit: that is bad input, not a crash.
      throw new UserError({ message: `invalid YAML: ${firstLine((e as Error).message)}`, location: { file } });
    }
    return new YamlSource(file, value, undefined, { doc, lines });
  }

  static read(file: string, displayName = file, cache?: ParsedFileCache): YamlSource | undefined {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
      throw new UserError({ message: `cannot read ${displayName}: ${(e as Error).message}`, location: { file: displayName } });
    }
    // Reading a FIFO would block until a writer comes (signals included): refuse anything but a file.
    if (!st.isFile())
      throw new UserError({
        message: `not a regular file but ${st.isFIFO() ? 'a FIFO' : st.isDirectory() ? 'a directory' : 'a special file'}`,
        location: { file: displayName },
      });
    const hit = cache?.get(file, st);
    if (hit) return new YamlSource(displayName, hit.value, file);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new UserError({ message: `cannot read ${displayName}: ${(e as Error).message}`, location: { file: displayName } });
    }
    const src = YamlSource.parse(displayName, text);
    cache?.put(file, st, src.value);
    return src;
  }

  toJS(): unknown {
    return this.value; // shared, never mutated by readers
  }

  private positions(): { doc: Document.Parsed; lines: LineCounter } | undefined {
    if (!this.parsed && this.abs) {
      try {
        const lines = new LineCounter();
        const doc = YAML.parseDocument(fs.readFileSync(this.abs, 'utf8'), { lineCounter: lines });
        this.parsed = { doc, lines };
      } catch {
        return undefined;
      }
    }
    return this.parsed;
  }

  /** Location of the node at `keyPath` (or of its key, when `key` is true). */
  locate(keyPath: readonly (string | number)[], key = false): SourceLocation {
    const parsed = this.positions();
    if (!parsed) return { file: this.file };
    let node: unknown = parsed.doc.contents;
    let keyNode: unknown;
    for (const k of keyPath) {
      if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === k);
        if (!pair) break;
        keyNode = pair.key;
        node = pair.value;
      } else if (isSeq(node) && typeof k === 'number') {
        keyNode = node.items[k];
        node = node.items[k];
      } else break;
    }
    const target = (key ? keyNode : node) ?? node;
    const range = (target as Node | undefined)?.range;
    if (!range) return { file: this.file };
    const pos = parsed.lines.linePos(range[0]);
    return { file: this.file, line: pos.line, column: pos.col };
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}
