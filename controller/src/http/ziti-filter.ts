import { badRequest } from '../platform/errors.js';
import type { SqlFilter } from '../store/sql-filter.js';

/**
 * A subset of the OpenZiti filter language compiled to parameterised SQL:
 *   name = "x" and (method != "cert" or username contains "ad") sort by createdAt desc skip 10 limit 5
 * Operators: = != < <= > >= contains icontains in [..]; and, or, not, parentheses; literal true/false.
 * Only fields of the given map can be named; values never reach SQL text.
 */

type Token = {
  kind: 'word' | 'string' | 'number' | 'op' | 'punct';
  text: string;
  value?: unknown;
  pos: number;
};

const OPS = ['!=', '<=', '>=', '=', '<', '>'];

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      while (j < input.length && input[j] !== '"') {
        if (input[j] === '\\' && j + 1 < input.length) j++;
        s += input[j];
        j++;
      }
      if (j >= input.length) throw invalid(`unterminated string starting at position ${i}`);
      tokens.push({ kind: 'string', text: s, value: s, pos: i });
      i = j + 1;
    } else if (/[-\d]/.test(c) && /^-?\d/.test(input.slice(i))) {
      const m = /^-?\d+(\.\d+)?/.exec(input.slice(i))!;
      tokens.push({ kind: 'number', text: m[0], value: Number(m[0]), pos: i });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(input.slice(i))!;
      tokens.push({ kind: 'word', text: m[0], pos: i });
      i += m[0].length;
    } else if ('()[],'.includes(c)) {
      tokens.push({ kind: 'punct', text: c, pos: i });
      i++;
    } else {
      const op = OPS.find((o) => input.startsWith(o, i));
      if (!op) throw invalid(`unexpected character '${c}' at position ${i}`);
      tokens.push({ kind: 'op', text: op, pos: i });
      i += op.length;
    }
  }
  return tokens;
}

function invalid(message: string) {
  return badRequest('INVALID_FILTER', `invalid filter: ${message}`);
}

class Parser {
  private i = 0;
  readonly params: unknown[] = [];
  constructor(
    private readonly tokens: Token[],
    private readonly fields: Record<string, string>,
  ) {}

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }
  private isWord(w: string, t = this.peek()): boolean {
    return t?.kind === 'word' && t.text.toLowerCase() === w;
  }
  private next(what: string): Token {
    const t = this.tokens[this.i++];
    if (!t) throw invalid(`expected ${what} but the filter ended`);
    return t;
  }
  private expectPunct(p: string) {
    const t = this.next(`'${p}'`);
    if (t.text !== p || t.kind !== 'punct') throw invalid(`expected '${p}' at position ${t.pos}`);
  }

  parse(): SqlFilter {
    let where = '1=1';
    const t = this.peek();
    if (t && !this.isWord('sort') && !this.isWord('skip') && !this.isWord('limit')) where = this.or();
    const result: SqlFilter = { where, params: this.params, orderBy: '' };
    while (this.peek()) {
      if (this.isWord('sort')) {
        this.i++;
        if (!this.isWord('by')) throw invalid(`expected 'by' after 'sort'`);
        this.i++;
        const parts: string[] = [];
        do {
          if (parts.length) this.i++;
          const col = this.column(this.next('a field name'));
          let dir = 'ASC';
          if (this.isWord('asc') || this.isWord('desc')) dir = this.next('direction').text.toUpperCase();
          parts.push(`${col} ${dir}`);
        } while (this.peek()?.text === ',');
        result.orderBy = parts.join(', ');
      } else if (this.isWord('skip') || this.isWord('limit')) {
        const key = this.next('skip/limit').text.toLowerCase() as 'skip' | 'limit';
        const n = this.next('a number');
        if (n.kind !== 'number' || !Number.isInteger(n.value) || (n.value as number) < 0)
          throw invalid(`${key} needs a non-negative integer, got '${n.text}'`);
        result[key] = n.value as number;
      } else {
        const bad = this.peek()!;
        throw invalid(`unexpected '${bad.text}' at position ${bad.pos}`);
      }
    }
    return result;
  }

  private or(): string {
    let left = this.and();
    while (this.isWord('or')) {
      this.i++;
      left = `(${left} OR ${this.and()})`;
    }
    return left;
  }

  private and(): string {
    let left = this.unary();
    while (this.isWord('and')) {
      this.i++;
      left = `(${left} AND ${this.unary()})`;
    }
    return left;
  }

  private unary(): string {
    const t = this.peek();
    if (this.isWord('not')) {
      this.i++;
      return `NOT (${this.unary()})`;
    }
    if (t?.kind === 'punct' && t.text === '(') {
      this.i++;
      const inner = this.or();
      this.expectPunct(')');
      return `(${inner})`;
    }
    if (this.isWord('true') || this.isWord('false')) {
      this.i++;
      return t!.text.toLowerCase() === 'true' ? '1=1' : '1=0';
    }
    return this.comparison();
  }

  private comparison(): string {
    const col = this.column(this.next('a field name'));
    const opTok = this.next('an operator');
    let op = opTok.text.toLowerCase();
    if (opTok.kind === 'word' && op === 'not') {
      const nextOp = this.next('an operator').text.toLowerCase();
      op = `not ${nextOp}`;
    }
    switch (op) {
      case '=':
      case '!=':
      case '<':
      case '<=':
      case '>':
      case '>=': {
        const v = this.value();
        if (v === null)
          return op === '=' ? `${col} IS NULL` : op === '!=' ? `${col} IS NOT NULL` : this.fail(opTok);
        this.params.push(v);
        return `${col} ${op} ?`;
      }
      case 'contains':
      case 'not contains':
        this.params.push(String(this.value()));
        return `instr(${col}, ?) ${op === 'contains' ? '>' : '='} 0`;
      case 'icontains':
      case 'not icontains':
        this.params.push(`%${String(this.value()).replace(/[\\%_]/g, (m) => `\\${m}`)}%`);
        return `${col} ${op === 'icontains' ? 'LIKE' : 'NOT LIKE'} ? ESCAPE '\\'`;
      case 'in':
      case 'not in': {
        this.expectPunct('[');
        const values: unknown[] = [];
        while (this.peek()?.text !== ']') {
          if (values.length) this.expectPunct(',');
          values.push(this.value());
        }
        this.expectPunct(']');
        if (!values.length) throw invalid(`'${op}' needs at least one value`);
        this.params.push(...values);
        return `${col} ${op === 'in' ? 'IN' : 'NOT IN'} (${values.map(() => '?').join(', ')})`;
      }
      default:
        return this.fail(opTok);
    }
  }

  private fail(t: Token): never {
    throw invalid(`unsupported operator '${t.text}' at position ${t.pos}`);
  }

  private value(): unknown {
    const t = this.next('a value');
    if (t.kind === 'string' || t.kind === 'number') return t.value;
    if (this.isWord('true', t)) return 1;
    if (this.isWord('false', t)) return 0;
    if (this.isWord('null', t)) return null;
    throw invalid(`expected a value at position ${t.pos}, got '${t.text}'`);
  }

  private column(t: Token): string {
    const col = t.kind === 'word' ? this.fields[t.text] : undefined;
    if (!col) {
      throw invalid(`unknown field '${t.text}'; filterable fields: ${Object.keys(this.fields).join(', ')}`);
    }
    return col;
  }
}

export function compileFilter(filter: string | undefined, fields: Record<string, string>): SqlFilter {
  if (!filter || !filter.trim()) return { where: '1=1', params: [], orderBy: '' };
  return new Parser(tokenize(filter), fields).parse();
}
