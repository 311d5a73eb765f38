/**
 * Secret redaction, run once per record in the transport's worker, before any output sees it.
 *
 *   record ─▶ walk: a secret key (keys.ts) replaces its whole value; every other string ─▶ text()
 *   text() ─▶ one pass of the keyword prefilter ─▶ only the rules (rules.ts) whose keywords appeared ─▶ user patterns
 *
 * - By key name, at any depth (arrays included): `password`, `passwordConfirm`, `DB_PASS`, `api-key`,
 *   `secrets: {...}` and `tokens: [...]` are replaced whole; `password_policy`, `max_tokens`, `author` stay.
 * - By value, inside every string (message, stack traces, SQL, embedded JSON and query strings): only the
 *   secret part is replaced, the rest stays readable. Card numbers must pass the Luhn check.
 * - Bounded: deeper than `maxDepth`, wider than `maxKeys`, or longer than `maxStringLength` is cut, never
 *   passed on unscanned.
 */
import { isInnocentValue, isSecretKeyName, keyWords, mayBeInnocent } from './keys.js';
import { isCardNumber } from './luhn.js';
import { Prefilter } from './prefilter.js';
import { type Groups, RULES, type Rule, type RuleContext } from './rules.js';

export { luhnValid } from './luhn.js';
export { RULES } from './rules.js';

export interface RedactOptions {
  /** Key names added to the built-in list (matched case- and separator-insensitively, as a whole or as a word). */
  keys?: readonly string[];
  /** Regular expression sources added to the built-in rules; each whole match is replaced. */
  patterns?: readonly string[];
  /** What replaces a secret. @default '[REDACTED]' */
  censor?: string;
  /** Nesting depth scanned; deeper values are replaced by a marker. @default 32 */
  maxDepth?: number;
  /** Keys per object and items per array scanned; the rest are dropped (and counted). @default 1000 */
  maxKeys?: number;
  /** Characters per string scanned; a longer string is cut to this. @default 262144 */
  maxStringLength?: number;
  /** Characters per key; a longer key is cut to this, with a marker. @default 256 */
  maxKeyLength?: number;
}

export interface Redactor {
  /** Redact a parsed record in place (and return it). */
  (record: Record<string, unknown>): Record<string, unknown>;
  /** Redact one string. */
  text(value: string): string;
  /** Values cut or dropped by the bounds so far. */
  readonly truncated: number;
  /** The walk's decisions one value at a time, for a path that redacts a serialized line without parsing it. */
  readonly decisions: RedactionDecisions;
}

/**
 * What the walk decides, exposed so that the transport's one-pass path (transports/fast-document.ts) takes
 * every decision from here and cannot miss what the walk catches.
 */
export interface RedactionDecisions {
  readonly censor: string;
  readonly maxDepth: number;
  readonly maxKeys: number;
  readonly maxKeyLength: number;
  /** The walk replaces the whole value of `key` (`value`: the decoded string, the number, or any object). */
  censors(key: string, value: unknown): boolean;
  /** `censors(key, s)` for every non-empty string `s`: the value need not be read to know. */
  censorsText(key: string): boolean;
  /**
   * `text()` returns the string whose UTF-8 is `b[start, end)` unchanged, known without decoding it (false:
   * ask `text()`).
   */
  clean(b: Uint8Array, start: number, end: number): boolean;
  /** What the walk makes of a number: itself, the censor (a card number), or its text (not finite). */
  number(value: number): number | string;
  /** A trace-context id the walk leaves unscanned (`depth`: of the object holding `key`). */
  keepsId(depth: number, parentKey: string, key: string, value: string): boolean;
}

/**
 * Trace context ids are random hex: an all-digit one could pass for a card number. They are not scanned when
 * they have an id's exact shape (lower-case hex of the right length), and scanned like any string otherwise;
 * so is the server's query id pgsight writes as `db.query.id`: digits as the `id` of an object `query` two
 * levels down, where that field is (one level up or down, the same digits are scanned).
 */
// Maps, not object literals: a logged key `constructor` must not find Object.prototype's.
const ID_SHAPES = new Map([
  ['trace', /^[0-9a-f]{32}$/],
  ['span', /^[0-9a-f]{16}$/],
  ['transaction', /^[0-9a-f]{16}$/],
  ['parent', /^[0-9a-f]{16}$/],
]);
const TOP_LEVEL_IDS = new Map([
  ['trace_id', /^[0-9a-f]{32}$/],
  ['traceId', /^[0-9a-f]{32}$/],
  ['span_id', /^[0-9a-f]{16}$/],
  ['spanId', /^[0-9a-f]{16}$/],
]);

/**
 * A user pattern with the catastrophic shape (a quantified group whose body can itself repeat without
 * bound: `(a+)+`, `(\w*\s?)*`, `(.*)+`) takes exponential or quadratic time on a failing input. Such a pattern
 * is refused at start-up, with its text, rather than allowed to stall the worker on one record.
 */
export function catastrophicShape(source: string): boolean {
  const stack: boolean[] = [];
  let inClass = false;
  let repeatsInside = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '(') {
      stack.push(repeatsInside);
      repeatsInside = false;
    } else if (c === ')') {
      const inner = repeatsInside;
      repeatsInside = stack.pop() ?? false;
      const next = source.slice(i + 1, i + 12);
      const unbounded = /^(?:[*+]|\{\d+,\})/.test(next);
      if (inner && unbounded) return true;
      if (inner || unbounded) repeatsInside = true;
    } else if (c === '*' || c === '+') repeatsInside = true;
    else if (c === '{' && /^\{\d+,\}/.test(source.slice(i, i + 12))) repeatsInside = true;
  }
  return false;
}

export function createRedactor(options: RedactOptions = {}): Redactor {
  const censor = options.censor ?? '[REDACTED]';
  const maxDepth = options.maxDepth ?? 32;
  const maxKeys = options.maxKeys ?? 1000;
  const maxStringLength = options.maxStringLength ?? 262_144;
  const maxKeyLength = options.maxKeyLength ?? 256;
  const extraKeys: ReadonlySet<string> = new Set((options.keys ?? []).map((k) => keyWords(k).join('')));
  const keyCache = new Map<string, boolean>();
  const isSecretKey = (key: string): boolean => {
    let secret = keyCache.get(key);
    if (secret === undefined) {
      secret = isSecretKeyName(key, extraKeys);
      if (keyCache.size < 10_000) keyCache.set(key, secret);
    }
    return secret;
  };
  const ctx: RuleContext = { censor, isSecretKey };
  const prefilter = new Prefilter(RULES);
  const replacers = RULES.map((rule) => (match: string, ...rest: unknown[]): string => {
    const hasGroups = typeof rest[rest.length - 1] === 'object';
    const groups = (hasGroups ? rest[rest.length - 1] : {}) as Groups;
    const input = rest[rest.length - (hasGroups ? 2 : 1)] as string;
    const offset = rest[rest.length - (hasGroups ? 3 : 2)] as number;
    return rule.replace(ctx, match, groups, input, offset);
  });
  const userPatterns = (options.patterns ?? []).map((source) => new RegExp(source, 'gi'));
  const selected = new Uint8Array(RULES.length);

  let truncated = 0;
  const text = (value: string): string => {
    let s = value;
    if (s.length > maxStringLength) {
      s = `${s.slice(0, maxStringLength)}…[truncated]`;
      truncated++;
    }
    if (s.length >= SHORTEST_SECRET) {
      const any = prefilter.select(s, selected);
      if (any)
        for (let i = 0; i < RULES.length; i++) {
          if (selected[i] === 0) continue;
          selected[i] = 0;
          const rule = RULES[i] as Rule;
          rule.pattern.lastIndex = 0;
          s = rule.apply
            ? rule.apply(ctx, s, rule.pattern)
            : s.replace(rule.pattern, replacers[i] as (m: string, ...r: unknown[]) => string);
        }
    }
    for (const pattern of userPatterns) s = s.replace(pattern, censor);
    return s;
  };

  const number = (value: number) =>
    cardLike(value) ? censor : Number.isFinite(value) ? value : String(value);

  const secretValue = (key: string, v: unknown) =>
    v !== null &&
    v !== undefined &&
    v !== '' &&
    typeof v !== 'boolean' &&
    isSecretKey(key) &&
    !isInnocentValue(key, v);

  const walk = (value: unknown, depth: number, parentKey = ''): unknown => {
    if (typeof value === 'string') return text(value);
    // JSON has no Infinity: `1e400` would become null. Kept as what it is, a string.
    if (typeof value === 'number') return number(value);
    if (value === null || typeof value !== 'object') return value;
    if (depth >= maxDepth) {
      truncated++;
      return '[truncated: too deep]';
    }
    if (Array.isArray(value)) {
      if (value.length > maxKeys) {
        truncated++;
        const cut = value.length - maxKeys;
        value.length = maxKeys;
        for (let i = 0; i < value.length; i++) value[i] = walk(value[i], depth + 1);
        value.push(`[truncated: ${cut} more]`);
        return value;
      }
      for (let i = 0; i < value.length; i++) value[i] = walk(value[i], depth + 1);
      return value;
    }
    const object = value as Record<string, unknown>;
    let count = 0;
    let dropped = 0;
    for (const key of Object.keys(object)) {
      if (++count > maxKeys) {
        delete object[key];
        dropped++;
        continue;
      }
      const v = object[key];
      if (key.length > maxKeyLength) {
        // A key is scanned and kept, but not a megabyte of it.
        truncated++;
        delete object[key];
        const short = `${key.slice(0, maxKeyLength)}…[truncated]`;
        object[short] = secretValue(key, v) ? censor : walk(v, depth + 1, key);
        continue;
      }
      if (secretValue(key, v)) object[key] = censor;
      else if (typeof v === 'string' && isTraceId(depth, parentKey, key, v)) continue;
      else if (v !== null && (typeof v === 'string' || typeof v === 'object' || typeof v === 'number'))
        object[key] = walk(v, depth + 1, key);
    }
    if (dropped > 0) {
      truncated++;
      object['[truncated]'] = `${dropped} more keys`;
    }
    return object;
  };

  const redactor = ((record: Record<string, unknown>) =>
    walk(record, 0) as Record<string, unknown>) as Redactor;
  redactor.text = text;
  Object.defineProperty(redactor, 'truncated', { get: () => truncated });
  const decisions: RedactionDecisions = {
    censor,
    maxDepth,
    maxKeys,
    maxKeyLength,
    censors: secretValue,
    censorsText: (key) => isSecretKey(key) && !mayBeInnocent(key),
    // Lengths in bytes: at least the string's in characters, so a bound in characters errs toward text().
    clean: (b, start, end) => {
      if (userPatterns.length > 0 || end - start > maxStringLength) return false;
      if (end - start < SHORTEST_SECRET || !prefilter.selectBytes(b, selected, start, end)) return true;
      selected.fill(0);
      return false;
    },
    number,
    keepsId: isTraceId,
  };
  Object.defineProperty(redactor, 'decisions', { value: decisions });
  return redactor;
}

/** Nothing secret that the rules know fits in fewer characters. */
const SHORTEST_SECRET = 8;

/** `db.query.id`, the server's query id (pg_stat_activity.query_id, a signed 64-bit integer as text). */
const QUERY_ID = /^-?[0-9]{1,19}$/;

function isTraceId(depth: number, parentKey: string, key: string, value: string): boolean {
  if (key !== 'id') return depth === 0 && TOP_LEVEL_IDS.get(key)?.test(value) === true;
  // About one query id in twenty passes the card rule (13-19 digits, an issuer's first digit, Luhn-valid).
  if (depth === 2 && parentKey === 'query') return QUERY_ID.test(value);
  return ID_SHAPES.get(parentKey)?.test(value) === true;
}

/** A number that is a card number (13-19 digits, Luhn-valid), as JSON carries one. */
const cardLike = (v: number) => {
  if (v < 1e12 || !Number.isSafeInteger(v)) return false;
  // Issuer prefixes start with 2 to 6: most large numbers (epoch milliseconds start with 1) are told apart
  // without their text.
  let unit = 1e12;
  while (v >= unit * 10) unit *= 10;
  const lead = Math.floor(v / unit);
  return lead >= 2 && lead <= 6 && isCardNumber(String(v));
};
