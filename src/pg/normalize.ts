/**
 * Statement normalization and fingerprinting, in the spirit of pg_stat_statements' query jumbling
 * (https://www.postgresql.org/docs/current/pgstatstatements.html) but on the client, from text alone.
 *
 * - literals (numbers, '...', E'...', B'...', X'...', U&'...', $tag$...$tag$, TRUE/FALSE) become `?`;
 * - `$n` parameters stay as they are;
 * - `IN (...)` lists and the rows of a multi-row `VALUES` are collapsed, so the row count does not matter;
 * - comments go, white space is canonical, unquoted words are case-folded (keywords upper, names lower).
 *
 * The scanner is one left-to-right pass with no backtracking: any input, however malformed or unterminated,
 * is normalized in linear time and never throws.
 */
import { createHash } from 'node:crypto';

export interface NormalizedQuery {
  /** The statement with literals replaced by `?` and lists collapsed. */
  readonly text: string;
  /** 16 hex digits of SHA-256 over `text`: equal across processes for statements equal up to literals. */
  readonly fingerprint: string;
  /** The statement's verb, upper case (`SELECT`, `INSERT`, ...), or undefined when there is none. */
  readonly operation: string | undefined;
  /** The first table the statement reads or writes, when the text makes it plain. */
  readonly collection: string | undefined;
}

type TokenKind = 'word' | 'keyword' | 'quoted' | 'param' | 'literal' | 'punct' | 'op';
interface Token {
  kind: TokenKind;
  text: string;
}

// Keywords are written upper case; every other unquoted word lower case (PostgreSQL folds unquoted names to
// lower case, so `Users` and `users` are the same table). The list only affects spelling, never equality.
const KEYWORDS = new Set(
  (
    'ABORT ALL ALTER ANALYZE AND ANY ARRAY AS ASC BEGIN BETWEEN BY CALL CASE CAST CHECK COLLATE COMMIT ' +
    'CONFLICT CONSTRAINT COPY CREATE CROSS CURRENT_DATE CURRENT_TIMESTAMP DEFAULT DEFERRABLE DELETE DESC ' +
    'DISTINCT DO DROP ELSE END ESCAPE EXCEPT EXECUTE EXISTS EXPLAIN FETCH FILTER FIRST FOR FROM FULL GRANT ' +
    'GROUP HAVING ILIKE IN INDEX INNER INSERT INTERSECT INTERVAL INTO IS ISOLATION JOIN KEY LAST LATERAL LEFT ' +
    'LEVEL LIKE LIMIT LOCAL LOCK MATERIALIZED MERGE NATURAL NO NOT NOTHING NOWAIT NULL NULLS OF OFFSET ON ONLY ' +
    'OR ORDER OUTER OVER PARTITION PREPARE PRIMARY READ RECURSIVE REFERENCES RELEASE REPEATABLE RETURNING ' +
    'REVOKE RIGHT ROLLBACK ROW ROWS SAVEPOINT SELECT SERIALIZABLE SESSION SET SHARE SHOW SIMILAR SKIP SOME ' +
    'START TABLE THEN TO TRANSACTION TRUNCATE UNION UNIQUE UPDATE USING VACUUM VALUES VIEW WHEN WHERE WINDOW ' +
    'WITH WITHOUT WORK COMMITTED UNCOMMITTED LOCKED WRITE'
  ).split(' '),
);

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

const isDigit = (c: number) => c >= 48 && c <= 57;
const isWordStart = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c >= 128;
const isWordPart = (c: number) => isWordStart(c) || isDigit(c) || c === 36;
const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13);
const OP_CHARS = '+-*/<>=~!@#%^&|`?';

/** Index just past a '...' string starting at `start` (the opening quote); backslashes escape when `escapes`. */
function skipQuoted(sql: string, start: number, quote: number, escapes: boolean): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql.charCodeAt(i);
    if (escapes && c === 92) {
      i += 2;
      continue;
    }
    if (c === quote) {
      if (sql.charCodeAt(i + 1) === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return sql.length;
}

function skipBlockComment(sql: string, start: number): number {
  let depth = 1;
  let i = start + 2;
  while (i < sql.length && depth > 0) {
    if (sql.startsWith('/*', i)) {
      depth++;
      i += 2;
    } else if (sql.startsWith('*/', i)) {
      depth--;
      i += 2;
    } else i++;
  }
  return i;
}

/** A dollar-quote tag (`$$` or `$tag$`) at `start`, or undefined when `$` starts something else. */
function dollarTag(sql: string, start: number): string | undefined {
  let i = start + 1;
  if (sql.charCodeAt(i) === 36) return '$$';
  if (!isWordStart(sql.charCodeAt(i))) return undefined;
  while (i < sql.length && (isWordStart(sql.charCodeAt(i)) || isDigit(sql.charCodeAt(i)))) i++;
  return sql.charCodeAt(i) === 36 ? sql.slice(start, i + 1) : undefined;
}

function endOfNumber(sql: string, start: number): number {
  let i = start;
  while (i < sql.length && (isDigit(sql.charCodeAt(i)) || sql.charCodeAt(i) === 95)) i++;
  if (sql.charCodeAt(i) === 46 && sql.charCodeAt(i + 1) !== 46) {
    i++;
    while (i < sql.length && isDigit(sql.charCodeAt(i))) i++;
  }
  const e = sql.charCodeAt(i);
  if (e === 69 || e === 101) {
    let j = i + 1;
    if (sql.charCodeAt(j) === 43 || sql.charCodeAt(j) === 45) j++;
    if (isDigit(sql.charCodeAt(j))) {
      i = j;
      while (i < sql.length && isDigit(sql.charCodeAt(i))) i++;
    }
  }
  // 0x1F, 0o17, 0b101 (PostgreSQL 16+) and trailing junk like `1abc` stay one literal.
  while (i < sql.length && isWordPart(sql.charCodeAt(i))) i++;
  return i;
}

/** A unary minus belongs to the number after it when nothing value-like stands before it. */
function minusIsSign(prev: Token | undefined): boolean {
  if (!prev) return true;
  if (prev.kind === 'op' || prev.kind === 'keyword') return true;
  return prev.kind === 'punct' && prev.text !== ')' && prev.text !== ']';
}

function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  const literal = () => tokens.push({ kind: 'literal', text: '?' });
  let i = 0;
  while (i < sql.length) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      i++;
    } else if (c === 45 && sql.charCodeAt(i + 1) === 45) {
      const eol = sql.indexOf('\n', i);
      i = eol === -1 ? sql.length : eol + 1;
    } else if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      i = skipBlockComment(sql, i);
    } else if (c === 39) {
      // Standard strings; backslash escapes only in E'' (standard_conforming_strings is on by default).
      i = skipQuoted(sql, i, 39, false);
      literal();
    } else if (c === 34) {
      const end = skipQuoted(sql, i, 34, false);
      tokens.push({ kind: 'quoted', text: sql.slice(i, end) });
      i = end;
    } else if (c === 36) {
      if (isDigit(sql.charCodeAt(i + 1))) {
        let j = i + 1;
        while (j < sql.length && isDigit(sql.charCodeAt(j))) j++;
        tokens.push({ kind: 'param', text: sql.slice(i, j) });
        i = j;
        continue;
      }
      const tag = dollarTag(sql, i);
      if (tag === undefined) {
        tokens.push({ kind: 'op', text: '$' });
        i++;
        continue;
      }
      const close = sql.indexOf(tag, i + tag.length);
      i = close === -1 ? sql.length : close + tag.length;
      literal();
    } else if (isDigit(c) || (c === 46 && isDigit(sql.charCodeAt(i + 1)))) {
      i = endOfNumber(sql, i);
      const prev = tokens[tokens.length - 1];
      const beforePrev = tokens[tokens.length - 2];
      if (prev?.kind === 'op' && prev.text === '-' && minusIsSign(beforePrev)) tokens.pop();
      literal();
    } else if (isWordStart(c)) {
      let j = i + 1;
      while (j < sql.length && isWordPart(sql.charCodeAt(j))) j++;
      const word = sql.slice(i, j);
      const next = sql.charCodeAt(j);
      const prefix = word.toUpperCase();
      if (next === 39 && (prefix === 'E' || prefix === 'B' || prefix === 'X' || prefix === 'N')) {
        i = skipQuoted(sql, j, 39, prefix === 'E');
        literal();
        continue;
      }
      if (prefix === 'U' && next === 38 && sql.charCodeAt(j + 1) === 39) {
        i = skipQuoted(sql, j + 1, 39, false);
        literal();
        continue;
      }
      i = j;
      if (prefix === 'TRUE' || prefix === 'FALSE') literal();
      else if (KEYWORDS.has(prefix)) tokens.push({ kind: 'keyword', text: prefix });
      else tokens.push({ kind: 'word', text: word.toLowerCase() });
    } else if (c === 58 && sql.charCodeAt(i + 1) === 58) {
      tokens.push({ kind: 'punct', text: '::' });
      i += 2;
    } else if ('(),;[].:'.includes(sql[i] as string)) {
      tokens.push({ kind: 'punct', text: sql[i] as string });
      i++;
    } else if (OP_CHARS.includes(sql[i] as string)) {
      let j = i + 1;
      while (
        j < sql.length &&
        OP_CHARS.includes(sql[j] as string) &&
        !sql.startsWith('--', j) &&
        !sql.startsWith('/*', j)
      )
        j++;
      tokens.push({ kind: 'op', text: sql.slice(i, j) });
      i = j;
    } else {
      tokens.push({ kind: 'op', text: sql[i] as string });
      i++;
    }
  }
  return tokens;
}

const isPlaceholder = (t: Token | undefined) =>
  t !== undefined && (t.kind === 'literal' || t.kind === 'param');

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
 * Collapse `IN (?, ?, ?)` to `IN (...)`, and `VALUES (..), (..), (..)` to its first row, so that one row and
 * a thousand rows of the same insert share a fingerprint (and so, the text the fingerprint is taken from).
 */
function collapseLists(tokens: Token[]): Token[] {
  const out: Token[] = [];
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
      let close = placeholderListEnd(tokens, i + 1);
      if (close === -1) continue;
      for (let k = i + 1; k <= close; k++) out.push(tokens[k] as Token);
      while (tokens[close + 1]?.text === ',' && tokens[close + 2]?.text === '(') {
        const rowEnd = placeholderListEnd(tokens, close + 2);
        if (rowEnd === -1) break;
        close = rowEnd;
      }
      i = close;
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
  const tokens = collapseLists(tokenize(sql));
  const text = render(tokens);
  const operation = findOperation(tokens);
  return {
    text,
    fingerprint: createHash('sha256').update(text).digest('hex').slice(0, 16),
    operation,
    collection: findCollection(tokens, operation),
  };
}
