/**
 * The SQL scanner behind normalizeQuery: one left-to-right pass with no backtracking, so any input, however
 * malformed or unterminated, becomes tokens in linear time and never throws; and the spelling of words
 * (PostgreSQL's keywords upper case, names lower case).
 */
import { NAME_KEYWORDS, RESERVED_KEYWORDS } from './keywords.js';

export type TokenKind = 'word' | 'keyword' | 'quoted' | 'param' | 'literal' | 'punct' | 'op';
export interface Token {
  kind: TokenKind;
  text: string;
  /** An unreserved or column-name keyword: written as a name where it stands for one. */
  nameable?: true;
}

// Keywords are written upper case and every other unquoted word lower case (PostgreSQL folds unquoted names
// to lower case, so `Users` and `users` are the same table), from PostgreSQL's own keyword list. Unreserved
// and column-name keywords (`name`, `type`, `value`, `position`...) are also column names: where the tokens
// around one say it is a name (spellNames), it is written as a name. Spelling never affects equality: both
// spellings come from the tokens alone.
const RESERVED = new Set(RESERVED_KEYWORDS.split(' ').filter(Boolean));
const NAMEABLE = new Set(NAME_KEYWORDS.split(' ').filter(Boolean));

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

export function tokenize(sql: string): Token[] {
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
      else if (RESERVED.has(prefix)) tokens.push({ kind: 'keyword', text: prefix });
      else if (NAMEABLE.has(prefix)) tokens.push({ kind: 'keyword', text: prefix, nameable: true });
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

export const isPlaceholder = (t: Token | undefined) =>
  t !== undefined && (t.kind === 'literal' || t.kind === 'param');

/** Keywords (and punctuation) after which a nameable keyword not followed by `(` is a name (`SELECT name`). */
const NAME_BEFORE = new Set([
  'SELECT',
  'BY',
  'WHERE',
  'AND',
  'OR',
  'RETURNING',
  'DISTINCT',
  'AS',
  'HAVING',
  'FROM',
  'JOIN',
  'ELSE',
  ',',
  '(',
]);
/** Keywords that may stand before a name that is followed by `=`, `,`, `)`... (`WHEN type = 1`). */
const EXPRESSION_BEFORE = new Set([
  ...NAME_BEFORE,
  'WHEN',
  'THEN',
  'ELSE',
  'ON',
  'SET',
  'NOT',
  'CASE',
  'USING',
]);
/** Tokens after which a nameable keyword is a name wherever it stands (`t.type`). */
const NAME_AFTER_PREV = new Set(['.', '::']);
/** Tokens before which a nameable keyword is a name (`type = $1`, `name,`, `(name)`). */
const NAME_BEFORE_NEXT = new Set([',', ')', '.', '::', '[']);

/**
 * Nameable keywords standing for a column or table become lower-case names (`SELECT name, type FROM`), and
 * stay keywords in the phrases they belong to (`PRIMARY KEY,`, `ON DELETE CASCADE)`, `DROP TABLE IF EXISTS`).
 */
export function spellNames(tokens: Token[]): void {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    if (t.nameable !== true) continue;
    const prev = tokens[i - 1];
    const next = tokens[i + 1];
    const afterKeyword = prev?.kind === 'keyword';
    const name =
      (prev !== undefined && NAME_AFTER_PREV.has(prev.text)) ||
      (next !== undefined &&
        (NAME_BEFORE_NEXT.has(next.text) || next.kind === 'op') &&
        (!afterKeyword || EXPRESSION_BEFORE.has(prev.text))) ||
      (prev !== undefined && NAME_BEFORE.has(prev.text) && next?.text !== '(');
    if (name) tokens[i] = { kind: 'word', text: t.text.toLowerCase() };
  }
}
