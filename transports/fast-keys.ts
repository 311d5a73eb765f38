/**
 * The one-pass path's key names (transports/fast-document.ts): how the top level treats each, whether the
 * redaction engine censors its value, and the tables that find a key met before without cutting it out of
 * the line.
 */
import { ECS_OBJECTS, handledKeys, type PinoConfig } from './ecs.js';
import type { RedactionDecisions } from './redact/index.js';

// How the top level treats a key.
export const REST = 0;
export const REST_OBJECT = 1; // an ECS field set: its value must be an object
export const FALLBACK = 2;
export const TIME = 3;
export const LEVEL = 4;
export const MESSAGE = 5;
export const PID = 6;
export const HOSTNAME = 7;
export const NAME = 8;
export const TRACE_ID = 9;
export const SPAN_ID = 10;
export const DROPPED = 11;

/** Written by the mapping itself: a record's own key of that name collides, and takes the general path. */
const MAPPING_KEYS = [
  'service',
  'event',
  'process',
  'host',
  'log',
  'trace',
  'span',
  'error',
  'http',
  'url',
  'user_agent',
  'client',
  'labels',
  'data_stream',
];
const PINO_KEYS: [string, number][] = [
  ['time', TIME],
  ['level', LEVEL],
  ['pid', PID],
  ['hostname', HOSTNAME],
  ['name', NAME],
  ['trace_id', TRACE_ID],
  ['span_id', SPAN_ID],
  ['trace_flags', DROPPED],
  ['v', DROPPED],
];

/** A key name met before, with how it is treated: its kind at the top level, and SECRET. */
export interface KeyEntry {
  readonly key: string;
  /** Its UTF-8 bytes, and the first of them. */
  readonly bytes: Buffer;
  readonly first: number;
  readonly info: number;
  /** The line this key was last met in at the top level. */
  line: number;
  /** Its last top-level value the walk left as it stood, and what the path read of it (fast-memo.ts). */
  memo: Buffer | undefined;
  memoLength: number;
  memoKeys: number;
  memoKind: number;
  memoNumber: number;
  memoSpans: Int32Array | undefined;
  memoSpanCount: number;
  memoMisses: number;
}

/** A secret key's value is censored whole (the redaction engine's word, asked once per key name). */
export const SECRET = 16;
/** An entry made for one use (the tables are full): compared by its text. */
export const UNCACHED = 32;
/**
 * A key the path never models, at any depth: an array index (a parsed object puts those first) or
 * `__proto__` (left to the general path's care).
 */
export const UNMODELLED = 64;
/** Every non-empty string value of the key is censored (the redaction engine's `censorsText`). */
export const TEXT_CENSORED = 128;
/** `key` stands in `b` at `at` past its first byte (the caller compared that, and the lengths agree). */
export function sameAt(b: Buffer, key: Buffer, at: number): boolean {
  for (let i = 1; i < key.length; i++) if (key[i] !== b[at + i]) return false;
  return true;
}

/** A stand-in for a value the censor decision needs only the kind of (an object, an array). */
export const CONTAINER = {};

export interface KeyTable {
  /** The entry of the key of `length` bytes at `at` in `b`. */
  entryOf(b: Buffer, at: number, length: number): KeyEntry;
  /** Which key the previous line had at each place (its n-th key, all depths counted). */
  readonly guesses: (KeyEntry | undefined)[];
}

/** The key table of one transport; undefined when its pino settings are none the path models. */
export function createKeyTable(decisions: RedactionDecisions, pino: PinoConfig): KeyTable | undefined {
  const own = new Map(PINO_KEYS);
  if (decisions.maxDepth < 2 || own.has(pino.messageKey) || own.has(pino.errorKey)) return undefined;
  if (MAPPING_KEYS.includes(pino.messageKey) || pino.messageKey === pino.errorKey) return undefined;
  const kinds = new Map<string, number>();
  for (const key of [...handledKeys(pino), ...MAPPING_KEYS]) kinds.set(key, FALLBACK);
  for (const [key, kind] of own) kinds.set(key, kind);
  kinds.set(pino.messageKey, MESSAGE);
  const infos = new Map<string, number>();
  const keyInfo = (key: string): number => {
    let value = infos.get(key);
    if (value === undefined) {
      const kind =
        kinds.get(key) ?? (key.includes('.') ? FALLBACK : ECS_OBJECTS.has(key) ? REST_OBJECT : REST);
      const unmodelled = key === '__proto__' || (key.charCodeAt(0) >= 48 && key.charCodeAt(0) <= 57);
      value =
        kind |
        (decisions.censors(key, CONTAINER) ? SECRET : 0) |
        (decisions.censorsText(key) ? TEXT_CENSORED : 0) |
        (unmodelled ? UNMODELLED : 0);
      if (infos.size < 10_000) infos.set(key, value);
    }
    return value;
  };
  // Key names by their length in bytes, compared in place: no key is cut out of the line or hashed once it is known.
  const byLength: KeyEntry[][] = Array.from({ length: 65 }, () => []);
  const overflow = new Map<string, KeyEntry>();
  const guesses: (KeyEntry | undefined)[] = [];
  const entryOf = (b: Buffer, at: number, length: number): KeyEntry => {
    const first = b[at] as number;
    const bucket = length <= 64 ? (byLength[length] as KeyEntry[]) : undefined;
    if (bucket)
      for (let i = 0; i < bucket.length; i++) {
        const known = bucket[i] as KeyEntry;
        if (known.first === first && sameAt(b, known.bytes, at)) return known;
      }
    // Decoded into a string of its own: nothing of the chunk is held while the table keeps the key.
    const key = b.toString('utf8', at, at + length);
    let made = overflow.get(key);
    if (made === undefined) {
      made = {
        key,
        bytes: Buffer.from(key),
        first,
        info: keyInfo(key),
        line: 0,
        memo: undefined,
        memoLength: -1,
        memoKeys: 0,
        memoKind: 0,
        memoNumber: 0,
        memoSpans: undefined,
        memoSpanCount: 0,
        memoMisses: 0,
      };
      if (bucket && bucket.length < 16) bucket.push(made);
      else if (overflow.size < 10_000) overflow.set(key, made);
      else made = { ...made, info: made.info | UNCACHED, memo: undefined, memoSpans: undefined };
    }
    return made;
  };
  return { entryOf, guesses };
}
