import fs from 'node:fs';
import YAML, { isMap, isScalar, isSeq, LineCounter, type Document, type Node } from 'yaml';
import { UserError, type Diagnostic, type SourceLocation } from '../errors.js';
import { errnoCode } from '../fs-util.js';

/**
 * A parsed YAML file that still knows where each value came from, so that
 * later validation can point at file:line:column.
 */
export class YamlSource {
  private constructor(
    readonly file: string,
    readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
  ) {}

  /** Parse text; malformed YAML becomes a diagnostic with its position. */
  static parse(file: string, text: string): YamlSource {
    const lines = new LineCounter();
    const doc = YAML.parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) {
      const diags: Diagnostic[] = doc.errors.map((err) => {
        const pos = err.linePos?.[0];
        return {
          message: `invalid YAML: ${firstLine(err.message)}`,
          location: pos ? { file, line: pos.line, column: pos.col } : { file },
        };
      });
      throw new UserError(diags);
    }
    return new YamlSource(file, doc, lines);
  }

  static read(file: string, displayName = file): YamlSource | undefined {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw new UserError({ message: `cannot read ${displayName}: ${(e as Error).message}` });
    }
    return YamlSource.parse(displayName, text);
  }

  toJS(): unknown {
    return this.doc.toJS({ maxAliasCount: 1000 });
  }

  /** Location of the node at `keyPath` (or of its key, when `key` is true). */
  locate(keyPath: readonly (string | number)[], key = false): SourceLocation {
    let node: unknown = this.doc.contents;
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
    const pos = this.lines.linePos(range[0]);
    return { file: this.file, line: pos.line, column: pos.col };
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}
