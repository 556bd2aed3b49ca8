import { UserError } from '../errors.js';
import type { ParamValue } from '../module-contract.js';
import type { ParamsTree } from './params.js';

/**
 * Params from a Python file, as DVC reads them: module-level constants
 * (`LR = 0.1`, `SIZES: list = [1, 2]`), class attributes as a nested mapping
 * (`class Train: lr = 0.1` → `Train.lr`) and `self.x = …` in a class's
 * `__init__`. Values must be literals: numbers, strings, True/False/None,
 * lists, tuples (read as lists) and dicts. We parse that subset ourselves
 * rather than run Python. DVC silently skips what it cannot evaluate; we
 * refuse it with its line number, so a param never goes missing unnoticed.
 * Imports and docstrings are allowed and ignored.
 */
export function parsePythonParams(text: string, file: string, positions?: Map<string, AssignmentPosition>): ParamsTree {
  const lines = logicalLines(text, file);
  const out: ParamsTree = {};
  let i = 0;
  const fail = (line: number, msg: string): never => {
    throw new UserError({
      message: msg,
      location: { file, line, column: 1 },
      hint: 'Lockstep reads module-level constants and class attributes whose values are literals',
    });
  };

  /** Parse a block of statements at `indent`; `mode` says what may appear in it. */
  const block = (indent: number, into: ParamsTree, mode: 'module' | 'class' | 'init', prefix = ''): void => {
    while (i < lines.length) {
      const l = lines[i]!;
      if (l.indent < indent) return;
      if (l.indent > indent) fail(l.line, `unexpected indentation`);
      i++;
      const s = l.text;
      if (/^(import|from)\s/.test(s) && mode === 'module') continue;
      if (s === 'pass' || /^[rRuU]?("|')/.test(s)) continue; // docstrings and `pass`
      const cls = /^class\s+([A-Za-z_]\w*)\s*(\([^)]*\))?\s*:$/.exec(s);
      if (cls && mode !== 'init') {
        const inner: ParamsTree = {};
        const next = lines[i];
        if (!next || next.indent <= indent) fail(l.line, `class ${cls[1]} has no body`);
        block(next!.indent, inner, 'class', `${prefix}${cls[1]}.`);
        into[cls[1]!] = inner;
        continue;
      }
      if (/^def\s+__init__\s*\(\s*self\b[^)]*\)\s*(->\s*None\s*)?:$/.test(s) && mode === 'class') {
        const next = lines[i];
        if (!next || next.indent <= indent) fail(l.line, `__init__ has no body`);
        block(next!.indent, into, 'init', prefix);
        continue;
      }
      const assign = splitAssignment(s);
      if (!assign) fail(l.line, `cannot read this statement as a param: ${short(s)}`);
      const { target, value } = assign!;
      const name = mode === 'init' ? /^self\.([A-Za-z_]\w*)$/.exec(target)?.[1] : /^[A-Za-z_]\w*$/.test(target) ? target : undefined;
      if (!name) fail(l.line, `cannot read the assignment to '${target}' as a param`);
      into[name!] = parseLiteral(value, (msg) => fail(l.line, `${msg} in the value of '${name}'`));
      positions?.set(prefix + name!, { line: l.line, lines: l.lines });
    }
  };
  block(0, out, 'module');
  return out;
}

/** Where a param's assignment is: its first line and how many physical lines it spans. */
export interface AssignmentPosition {
  readonly line: number;
  readonly lines: number;
}

interface LogicalLine {
  readonly line: number;
  readonly lines: number;
  readonly indent: number;
  readonly text: string;
}

/** Join physical lines into statements: brackets, strings and `\` continue a line; comments go. */
function logicalLines(text: string, file: string): LogicalLine[] {
  const out: LogicalLine[] = [];
  let cur = '';
  let startLine = 1;
  let indent = 0;
  let depth = 0;
  let line = 1;
  let atStart = true;
  for (let k = 0; k < text.length; k++) {
    const c = text[k]!;
    if (atStart) {
      // Measure indentation of the statement's first line.
      let n = 0;
      while (text[k + n] === ' ' || text[k + n] === '\t') n++;
      indent = n;
      startLine = line;
      k += n - 1;
      atStart = false;
      continue;
    }
    if (c === '#') {
      while (k + 1 < text.length && text[k + 1] !== '\n') k++;
      continue;
    }
    if (c === '"' || c === "'") {
      const triple = text.startsWith(c.repeat(3), k);
      const q = triple ? c.repeat(3) : c;
      let end = k + q.length;
      for (;;) {
        if (end >= text.length || (!triple && text[end] === '\n')) {
          throw new UserError({ message: 'unterminated string', location: { file, line, column: 1 } });
        }
        if (text[end] === '\\') end += 2;
        else if (text.startsWith(q, end)) break;
        else end++;
      }
      const s = text.slice(k, end + q.length);
      line += s.split('\n').length - 1;
      cur += s;
      k = end + q.length - 1;
      continue;
    }
    if (c === '\\' && text[k + 1] === '\n') {
      k++;
      line++;
      cur += ' ';
      continue;
    }
    if ('([{'.includes(c)) depth++;
    if (')]}'.includes(c)) depth--;
    if (c === '\n') {
      line++;
      if (depth > 0) {
        cur += ' ';
        continue;
      }
      if (cur.trim() !== '') out.push({ line: startLine, lines: line - startLine, indent, text: cur.trim() });
      cur = '';
      atStart = true;
      continue;
    }
    cur += c;
  }
  if (depth > 0) throw new UserError({ message: 'unclosed bracket', location: { file, line: startLine, column: 1 } });
  if (cur.trim() !== '') out.push({ line: startLine, lines: line - startLine + 1, indent, text: cur.trim() });
  return out;
}

/** `name = value` or `name: annotation = value` (the first `=` at bracket depth 0 that is not `==`). */
function splitAssignment(s: string): { target: string; value: string } | undefined {
  let depth = 0;
  let quote: string | undefined;
  for (let k = 0; k < s.length; k++) {
    const c = s[k]!;
    if (quote) {
      if (c === '\\') k++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (c === '=' && depth === 0 && s[k + 1] !== '=' && !'=!<>+-*/%&|^@:'.includes(s[k - 1] ?? '')) {
      const lhs = s.slice(0, k).trim();
      const target = lhs.includes(':') ? lhs.slice(0, lhs.indexOf(':')).trim() : lhs;
      return { target, value: s.slice(k + 1).trim() };
    }
  }
  return undefined;
}

function short(s: string): string {
  return s.length > 40 ? s.slice(0, 37) + '...' : s;
}

/** A Python literal (the subset JSON can hold, plus tuples as lists). */
export function parseLiteral(src: string, fail: (msg: string) => never): ParamValue {
  let k = 0;
  const ws = () => {
    while (k < src.length && /\s/.test(src[k]!)) k++;
  };
  const value = (): ParamValue => {
    ws();
    const c = src[k];
    if (c === undefined) return fail('missing value');
    if (c === '[' || c === '(') {
      const close = c === '[' ? ']' : ')';
      k++;
      const items: ParamValue[] = [];
      let sawComma = false;
      for (;;) {
        ws();
        if (src[k] === close) {
          k++;
          break;
        }
        items.push(value());
        ws();
        if (src[k] === ',') {
          k++;
          sawComma = true;
        } else if (src[k] !== close) fail(`expected ',' or '${close}'`);
      }
      // `(1)` is just 1 in Python; `(1,)` is a tuple.
      if (c === '(' && items.length === 1 && !sawComma) return items[0]!;
      return items;
    }
    if (c === '{') {
      k++;
      const obj: { [key: string]: ParamValue } = {};
      for (;;) {
        ws();
        if (src[k] === '}') {
          k++;
          break;
        }
        const key = value();
        if (typeof key !== 'string' && typeof key !== 'number' && typeof key !== 'boolean') fail('a dict key must be a string or a number');
        ws();
        if (src[k] !== ':') fail(src[k] === ',' || src[k] === '}' ? 'sets are not supported' : "expected ':'");
        k++;
        obj[String(key)] = value();
        ws();
        if (src[k] === ',') k++;
        else if (src[k] !== '}') fail("expected ',' or '}'");
      }
      return obj;
    }
    const str = /^([rRuU]?)("""|'''|"|')/.exec(src.slice(k));
    if (str) {
      const raw = str[1]!.toLowerCase() === 'r';
      const q = str[2]!;
      k += str[0].length;
      let s = '';
      for (;;) {
        if (k >= src.length) fail('unterminated string');
        if (src.startsWith(q, k)) {
          k += q.length;
          break;
        }
        if (src[k] === '\\' && !raw) {
          const e = src[k + 1]!;
          const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '0': '\0' };
          if (e in map) s += map[e];
          else if (e === 'x' || e === 'u') {
            const n = e === 'x' ? 2 : 4;
            s += String.fromCharCode(parseInt(src.slice(k + 2, k + 2 + n), 16));
            k += n;
          } else if (e === '\n') s += '';
          else s += '\\' + e;
          k += 2;
          continue;
        }
        s += src[k++];
      }
      ws();
      // Adjacent literals concatenate, as in Python.
      if (/^[rRuU]?["']/.test(src.slice(k))) {
        const rest = value();
        if (typeof rest !== 'string') fail('expected a string');
        return s + rest;
      }
      return s;
    }
    if (/^[bBfF][rR]?["']/.test(src.slice(k)) || /^[rR][bBfF]["']/.test(src.slice(k))) fail('bytes and f-strings are not literals Lockstep can read');
    const num = /^[-+]?\s*(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)([eE][-+]?\d+)?)(?![\w.])/.exec(src.slice(k));
    if (num) {
      k += num[0].length;
      const t = num[0].replace(/[\s_]/g, '');
      const neg = t.startsWith('-');
      const body = t.replace(/^[-+]/, '');
      const base = /^0[xX]/.test(body) ? 16 : /^0[oO]/.test(body) ? 8 : /^0[bB]/.test(body) ? 2 : 10;
      const n = base === 10 ? Number(body) : parseInt(body.slice(2), base);
      return neg ? -n : n;
    }
    const word = /^[A-Za-z_]\w*/.exec(src.slice(k));
    if (word) {
      k += word[0].length;
      if (word[0] === 'True') return true;
      if (word[0] === 'False') return false;
      if (word[0] === 'None') return null;
      return fail(`'${word[0]}' is not a literal`);
    }
    return fail(`unexpected '${c}'`);
  };
  const v = value();
  ws();
  if (k < src.length) fail(`unexpected '${src.slice(k, k + 10)}' (only literals are read)`);
  return v;
}

/**
 * Set existing params in a Python params file, as `dvc exp run -S` does: the
 * value on the assignment's line is replaced, everything else (comments,
 * layout, other statements) is kept. Only values on a single line can be set;
 * adding or deleting a param in Python is refused.
 */
export function setPythonParams(text: string, file: string, values: ReadonlyMap<string, ParamValue>): string {
  const positions = new Map<string, AssignmentPosition>();
  parsePythonParams(text, file, positions);
  const lines = text.split('\n');
  for (const [key, value] of values) {
    const pos = positions.get(key);
    if (!pos)
      throw new UserError({
        message: `cannot set '${key}' in ${file}: Lockstep edits only assignments that exist there`,
        hint: 'add it to the file first (adding or deleting Python params with +/~ is not supported)',
      });
    if (pos.lines !== 1)
      throw new UserError({ message: `cannot set '${key}' in ${file}: its value spans several lines`, location: { file, line: pos.line, column: 1 } });
    const old = lines[pos.line - 1]!;
    const eq = assignmentEquals(old);
    const comment = trailingComment(old, eq + 1);
    lines[pos.line - 1] = `${old.slice(0, eq + 1)} ${pythonLiteral(value)}${comment ? `  ${comment}` : ''}`;
  }
  return lines.join('\n');
}

function assignmentEquals(line: string): number {
  let quote: string | undefined;
  for (let k = 0; k < line.length; k++) {
    const c = line[k]!;
    if (quote) {
      if (c === '\\') k++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '=' && line[k + 1] !== '=' && !'=!<>'.includes(line[k - 1] ?? '')) return k;
  }
  return -1;
}

function trailingComment(line: string, from: number): string {
  let quote: string | undefined;
  for (let k = from; k < line.length; k++) {
    const c = line[k]!;
    if (quote) {
      if (c === '\\') k++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#') return line.slice(k).trimEnd();
  }
  return '';
}

/** A value written as Python source. */
function pythonLiteral(v: ParamValue): string {
  if (v === null) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : v > 0 ? "float('inf')" : v < 0 ? "float('-inf')" : "float('nan')";
  if (typeof v === 'string') return JSON.stringify(v); // a JSON string is a valid Python string literal
  if (Array.isArray(v)) return `[${v.map(pythonLiteral).join(', ')}]`;
  return `{${Object.entries(v)
    .map(([k, x]) => `${JSON.stringify(k)}: ${pythonLiteral(x)}`)
    .join(', ')}}`;
}
