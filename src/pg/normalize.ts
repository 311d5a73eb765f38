/**
 * Statement normalization and fingerprinting, in the spirit of pg_stat_statements' query jumbling
 * (https://www.postgresql.org/docs/current/pgstatstatements.html) but on the client, from text alone.
 *
 * - literals (numbers, '...', E'...', B'...', X'...', U&'...', $tag$...$tag$, TRUE/FALSE) become `?`;
 * - `$n` parameters stay as they are;
 * - `IN (...)` lists, and the rows of a multi-row `VALUES` that differ only in their values (literals,
 *   parameters, NULL; `DEFAULT`, `now()` and casts are part of a row's shape), are collapsed, so the row
 *   count does not matter;
 * - comments go, white space is canonical, unquoted words are case-folded (PostgreSQL's keywords upper,
 *   names lower).
 *
 * The scanner is one left-to-right pass with no backtracking: any input, however malformed or unterminated,
 * is normalized in linear time and never throws.
 */
import { createHash } from 'node:crypto';
import { isPlaceholder, spellNames, type Token, tokenize } from './sql-tokens.js';

export interface NormalizedQuery {
  /** The statement with literals replaced by `?` and lists collapsed. */
  readonly text: string;
  /** 16 hex digits of SHA-256 over `text`: equal across processes for statements equal up to literals. */
  readonly fingerprint: string;
  /** The statement's verb, upper case (`SELECT`, `INSERT`, ...), or undefined when there is none. */
  readonly operation: string | undefined;
  /** The first table the statement reads or writes, when the text makes it plain. */
  readonly collection: string | undefined;
  /**
   * OpenTelemetry's `db.query.summary`: the operation and, when the text makes it plain, the table it works
   * on (`SELECT accounts`); the operation alone otherwise; undefined when there is no operation.
   */
  readonly summary: string | undefined;
}

const OPERATIONS = new Set([
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'MERGE',
  'COPY',
  'VALUES',
  'TABLE',
  'CALL',
]);

/** For each '(' the index of its ')' (-1 when it is never closed): one pass, with a stack. */
function matchingParens(tokens: Token[]): Int32Array {
  const match = new Int32Array(tokens.length).fill(-1);
  const open: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const text = (tokens[i] as Token).text;
    if (text === '(') open.push(i);
    else if (text === ')') {
      const at = open.pop();
      if (at !== undefined) match[at] = i;
    }
  }
  return match;
}

/**
 * The shape of the VALUES row tokens[open..close]: its tokens with every value a literal, a parameter or NULL
 * (a constant, as pg_stat_statements counts it) read as `?`, so that rows differing only in their values have
 * one shape.
 */
function rowShape(tokens: Token[], open: number, close: number): string {
  let shape = '';
  for (let i = open; i <= close; i++) {
    const t = tokens[i] as Token;
    shape += isPlaceholder(t) || (t.kind === 'keyword' && t.text === 'NULL') ? '? ' : `${t.text} `;
  }
  return shape;
}

/**
 * If tokens[open] is '(' starting a list of only placeholders (and casts of them), the index of its ')'.
 */
function placeholderListEnd(tokens: Token[], open: number): number {
  let i = open + 1;
  let expectValue = true;
  for (; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    if (expectValue) {
      if (!isPlaceholder(t)) return -1;
      expectValue = false;
    } else if (t.text === ',') {
      expectValue = true;
    } else if (t.text === '::' && tokens[i + 1]?.kind === 'word') {
      i++;
    } else if (t.text === ')') {
      return i;
    } else return -1;
  }
  return -1;
}

/**
 * Collapse `IN (?, ?, ?)` to `IN (...)`, and the rows of `VALUES (..), (..), (..)` to one row per shape, so
 * that one row and a thousand rows of the same insert share a fingerprint (and so, the text the fingerprint
 * is taken from).
 */
function collapseLists(tokens: Token[]): Token[] {
  const out: Token[] = [];
  let parens: Int32Array | undefined; // computed at the first VALUES
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    out.push(t);
    const next = tokens[i + 1];
    if (t.kind === 'keyword' && t.text === 'IN' && next?.text === '(') {
      const close = placeholderListEnd(tokens, i + 1);
      if (close !== -1) {
        out.push({ kind: 'punct', text: '(' }, { kind: 'op', text: '...' }, { kind: 'punct', text: ')' });
        i = close;
      }
    } else if (t.kind === 'keyword' && t.text === 'VALUES' && next?.text === '(') {
      // Each row of a shape seen before in this list goes (DEFAULT, now(), NULL and casts included), so a
      // bulk insert of any row count has the fingerprint of its distinct row shapes, in order.
      const shapes = new Set<string>();
      let at = i + 1;
      for (;;) {
        parens ??= matchingParens(tokens);
        const close = parens[at] as number;
        if (close === -1) break;
        const shape = rowShape(tokens, at, close);
        if (!shapes.has(shape)) {
          if (shapes.size > 0) out.push({ kind: 'punct', text: ',' });
          shapes.add(shape);
          for (let k = at; k <= close; k++) out.push(tokens[k] as Token);
        }
        i = close;
        if (tokens[close + 1]?.text !== ',' || tokens[close + 2]?.text !== '(') break;
        at = close + 2;
      }
    }
  }
  return out;
}

const NO_SPACE_BEFORE = new Set([',', ')', ']', '.', '::', ';', '[']);
const NO_SPACE_AFTER = new Set(['(', '[', '.', '::']);

function render(tokens: Token[]): string {
  let out = '';
  let prev: Token | undefined;
  for (const t of tokens) {
    if (prev) {
      const glued =
        NO_SPACE_BEFORE.has(t.text) ||
        NO_SPACE_AFTER.has(prev.text) ||
        (t.text === '(' && (prev.kind === 'word' || prev.kind === 'quoted'));
      if (!glued) out += ' ';
    }
    out += t.text;
    prev = t;
  }
  return out;
}

function findOperation(tokens: Token[]): string | undefined {
  const first = tokens[0];
  if (!first || (first.kind !== 'keyword' && first.kind !== 'word')) return undefined;
  const verb = first.text.toUpperCase();
  if (verb !== 'WITH') return verb;
  // WITH ... the statement's verb is the first data-modifying or query keyword at depth 0.
  let depth = 0;
  for (const t of tokens) {
    if (t.text === '(') depth++;
    else if (t.text === ')') depth--;
    else if (depth === 0 && t.kind === 'keyword' && OPERATIONS.has(t.text)) return t.text;
  }
  return verb;
}

function qualifiedNameAt(tokens: Token[], start: number): string | undefined {
  let i = start;
  if (tokens[i]?.text === 'ONLY') i++;
  const parts: string[] = [];
  while (tokens[i]?.kind === 'word' || tokens[i]?.kind === 'quoted') {
    parts.push((tokens[i] as Token).text);
    if (tokens[i + 1]?.text !== '.') break;
    i += 2;
  }
  return parts.length > 0 ? parts.join('.') : undefined;
}

function findCollection(tokens: Token[], operation: string | undefined): string | undefined {
  const anchor =
    operation === 'INSERT' || operation === 'MERGE'
      ? 'INTO'
      : operation === 'UPDATE' || operation === 'COPY' || operation === 'TABLE'
        ? operation
        : operation === 'SELECT' || operation === 'DELETE'
          ? 'FROM'
          : undefined;
  if (!anchor) return undefined;
  let depth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    if (t.text === '(') depth++;
    else if (t.text === ')') depth--;
    else if (depth === 0 && t.kind === 'keyword' && t.text === anchor) {
      const name = qualifiedNameAt(tokens, i + 1);
      if (name) return name;
    }
  }
  return undefined;
}

/** Normalize one statement. Pure; see `createQueryNormalizer` for the cached form. */
export function normalizeQuery(sql: string): NormalizedQuery {
  const scanned = tokenize(sql);
  spellNames(scanned);
  const tokens = collapseLists(scanned);
  const text = render(tokens);
  const operation = findOperation(tokens);
  const collection = findCollection(tokens, operation);
  return {
    text,
    fingerprint: createHash('sha256').update(text).digest('hex').slice(0, 16),
    operation,
    collection,
    summary: operation && collection ? `${operation} ${collection}`.slice(0, 255) : operation,
  };
}
