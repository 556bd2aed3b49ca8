import { UserError, didYouMean, type SourceLocation } from '../errors.js';
import { allKeys, lookup, type ParamsTree } from './params.js';
import type { ParamValue } from '../module-contract.js';

/** One layer of names for `${...}`; `file` is set when the values come from a params file (and so are tracked). */
export interface Scope {
  readonly data: ParamsTree;
  readonly file?: string;
  /** Where the values were defined (`params.yaml`, `vars[1]`, `train.vars[0]`), for redefinition errors. */
  readonly source?: string;
}

/** A params value that an interpolation read from a params file: DVC tracks these as params deps. */
export interface UsedParam {
  readonly file: string;
  readonly key: string;
}

const EXPR = /(\\)?\$\{\s*([^}]*?)\s*\}/g;

export class Interpolator {
  readonly used: UsedParam[] = [];
  constructor(private readonly scopes: readonly Scope[]) {}

  /** The scopes, innermost first (a stage's own vars are checked against them). */
  get scopeList(): readonly Scope[] {
    return this.scopes;
  }

  /** Innermost scope first. */
  withScope(scope: Scope): Interpolator {
    const next = new Interpolator([scope, ...this.scopes]);
    return next;
  }

  resolve(value: unknown, loc: () => SourceLocation, opts: { cmd?: boolean } = {}): unknown {
    if (typeof value === 'string') return this.resolveString(value, loc, opts.cmd ?? false);
    if (Array.isArray(value)) return value.map((v) => this.resolve(v, loc, opts));
    if (value !== null && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[this.resolveString(k, loc, false) as string] = this.resolve(v, loc, opts);
      return out;
    }
    return value;
  }

  private lookupExpr(expr: string, loc: () => SourceLocation): ParamValue {
    for (const scope of this.scopes) {
      const r = lookup(scope.data, expr);
      if (r.found) {
        if (scope.file) this.used.push({ file: scope.file, key: expr });
        return r.value;
      }
    }
    const known = this.scopes.flatMap((s) => allKeys(s.data));
    throw new UserError({
      message: `could not find '${expr}' for \${${expr}} in params files or vars`,
      location: loc(),
      hint: didYouMean(expr, known),
    });
  }

  private resolveString(s: string, loc: () => SourceLocation, cmd: boolean): unknown {
    if (!s.includes('${')) return s;
    const whole = /^\$\{\s*([^}]*?)\s*\}$/.exec(s);
    if (whole) return this.lookupExpr(whole[1]!, loc);
    return s.replace(EXPR, (_m, escaped: string | undefined, expr: string) => {
      if (escaped) return '${' + expr + '}';
      const v = this.lookupExpr(expr, loc);
      if (v !== null && typeof v === 'object') {
        if (cmd && !Array.isArray(v)) return unpackDict(v);
        if (cmd && Array.isArray(v)) return v.map(String).join(' ');
        throw new UserError({
          message: `\${${expr}} is a ${Array.isArray(v) ? 'list' : 'dictionary'} and cannot be put inside a string`,
          location: loc(),
        });
      }
      return String(v);
    });
  }
}

/**
 * DVC's dictionary unpacking in cmd: `${opts}` → `--a 1 --b.c x --flag`, spelled
 * exactly as DVC spells it (strings quoted only when the shell needs it, None
 * as `None`, false left out), so the cmd recorded in a dvc.lock matches ours.
 */
function unpackDict(d: { [k: string]: ParamValue }, prefix = ''): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(d)) {
    const name = prefix + k;
    if (v === true) parts.push(`--${name}`);
    else if (v === false) continue;
    else if (v === null) parts.push(`--${name} None`);
    // List items are printed by Python's str(): True, not true.
    else if (Array.isArray(v)) parts.push(`--${name} ${v.map((x) => (typeof x === 'boolean' ? (x ? 'True' : 'False') : quoteArg(x))).join(' ')}`);
    else if (typeof v === 'object') parts.push(unpackDict(v, `${name}.`));
    else parts.push(`--${name} ${quoteArg(v)}`);
  }
  return parts.join(' ');
}

/** Python's shlex.quote, which DVC uses: safe words stay bare; others go in single quotes. */
function quoteArg(v: ParamValue): string {
  if (v === null) return 'None';
  if (typeof v !== 'string') return String(v);
  if (v === '') return "''";
  if (/^[\w@%+=:,./-]+$/.test(v)) return v;
  return `'${v.replace(/'/g, `'"'"'`)}'`;
}
