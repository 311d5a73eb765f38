/**
 * The one-pass path's reading of values (fast-document.ts writes the head): each value of a line as the
 * redaction engine's walk leaves it, copied as it stands or replaced in the members being written, and the
 * key table read as it goes. Module state: one line at a time, no allocation but the strings it must make.
 */
import {
  CONTAINER,
  type KeyEntry,
  type KeyTable,
  REST,
  SECRET,
  sameAt,
  TEXT_CENSORED,
  TIME,
  UNCACHED,
  UNMODELLED,
} from './fast-keys.js';
import { MEMO_SPANS, recall, remember } from './fast-memo.js';
import { ByteSink } from './fast-output.js';
import {
  b,
  COLON,
  COMMA,
  escaped,
  integer,
  isDigit,
  LBRACE,
  LBRACKET,
  literalEnd,
  MINUS,
  numberEnd,
  plain,
  QUOTE,
  RBRACE,
  RBRACKET,
  stringEnd,
  textOf,
} from './fast-tokens.js';
import type { RedactionDecisions, Redactor } from './redact/index.js';

const NOT_CENSORED = -2;

// The document being written: module state, so that the scan allocates only the strings it has to.
let d: RedactionDecisions;
let text: (value: string) => string = String;
let censorJson: Buffer = Buffer.alloc(0);
/**
 * The document's members after the head, as written so far (in the sink the document goes to, past room
 * left for the head: fast-document.ts), and where the uncopied part of the line starts.
 */
let rest = new ByteSink(0);
let copyFrom = 0;
/** Inside a value that is censored whole: read for its end only. */
let muted = 0;

/** Values replaced so far in the line: a member none was replaced in stood as it was. */
let replaced = 0;
function replace(start: number, end: number, json: string | Buffer): void {
  if (muted > 0) return;
  replaced++;
  rest.copy(b, copyFrom, start);
  if (typeof json === 'string') rest.text(json);
  else rest.bytes(json);
  copyFrom = end;
}

/** A string as the walk leaves it; `key` is set for an object's member (trace ids keep their shape). */
function stringValue(at: number, end: number, depth: number, parentKey: string, key?: string): void {
  if (muted > 0) return;
  if (!escaped) {
    if (d.clean(b, at + 1, end - 1)) return;
    const raw = textOf(at + 1, end - 1);
    if (key !== undefined && d.keepsId(depth, parentKey, key, raw)) return;
    const redacted = text(raw);
    if (redacted !== raw) replace(at, end, JSON.stringify(redacted));
    return;
  }
  const value = JSON.parse(textOf(at, end)) as string;
  // Written as JSON.stringify writes it: the same escapes, whatever the line's were.
  replace(
    at,
    end,
    JSON.stringify(key !== undefined && d.keepsId(depth, parentKey, key, value) ? value : text(value)),
  );
}

/** Where the short integers of the top-level value being read stand (pairs), for fast-memo.ts. */
const spans = new Int32Array(2 * MEMO_SPANS);
let spanCount = 0;

function numberValue(at: number, end: number): void {
  if (muted > 0) return;
  // Below 10^12 no number is a card number.
  if (plain && end - at < 13) {
    if (spanCount < MEMO_SPANS) {
      spans[2 * spanCount] = at;
      spans[2 * spanCount + 1] = end;
    }
    spanCount++;
    return;
  }
  if (plain && d.number(integer) === integer) return;
  const raw = textOf(at, end);
  const json = JSON.stringify(d.number(Number(raw)));
  if (json !== raw) replace(at, end, json);
}

/** A value that is not an object's member (an array's item), at `depth`. */
function value(at: number, depth: number): number {
  const c = b[at] as number;
  if (c === QUOTE) {
    const end = stringEnd(at);
    if (end > 0) stringValue(at, end, depth, '');
    return end;
  }
  if (c === LBRACE) return object(at, depth, '');
  if (c === LBRACKET) return array(at, depth);
  if (c === MINUS || isDigit(c)) {
    const end = numberEnd(at);
    if (end > 0) numberValue(at, end);
    return end;
  }
  return literalEnd(at);
}

/** Censors the value of a secret key when the walk would: past its end, or NOT_CENSORED, or -1. */
function censored(at: number, key: string, depth: number): number {
  // The key's entry (keyAt set it; nothing was read since).
  const textCensored = (entry.info & TEXT_CENSORED) !== 0;
  const c = b[at] as number;
  let end: number;
  let v: unknown = CONTAINER;
  if (c === QUOTE) {
    end = stringEnd(at);
    if (end < 0) return -1;
    if (textCensored && end - at > 2 && !escaped) {
      replace(at, end, censorJson);
      return end;
    }
    v = escaped ? JSON.parse(textOf(at, end)) : textOf(at + 1, end - 1);
  } else if (c === LBRACE || c === LBRACKET) {
    muted++;
    end = value(at, depth);
    muted--;
  } else if (c === MINUS || isDigit(c)) {
    end = numberEnd(at);
    if (end < 0) return -1;
    v = Number(textOf(at, end));
  } else {
    end = literalEnd(at);
    v = c === 110 ? null : c === 116;
  }
  if (end < 0) return -1;
  if (!d.censors(key, v)) return NOT_CENSORED;
  replace(at, end, censorJson);
  return end;
}

/** The member `key` of an object at `depth` whose own key in its parent is `parentKey`. */
function member(at: number, depth: number, parentKey: string, key: string, secret: boolean): number {
  if (muted === 0 && secret) {
    const end = censored(at, key, depth + 1);
    if (end !== NOT_CENSORED) return end;
  }
  const c = b[at] as number;
  if (c === QUOTE) {
    const end = stringEnd(at);
    if (end > 0) stringValue(at, end, depth, parentKey, key);
    return end;
  }
  if (c === LBRACE) return object(at, depth + 1, key);
  return value(at, depth + 1);
}

/** Counts lines, for KeyEntry.line. */
let lineSerial = 0;
/** Set by keyAt: the entry of the key read last. */
export let entry: KeyEntry;
let entryOf: KeyTable['entryOf'];
/** Which key the previous line had at each place (its n-th key, all depths counted), and the place now. */
let predicted: (KeyEntry | undefined)[] = [];
let ordinal = 0;
/** Keys of the objects being read, innermost last, up to `top`. */
const keys: KeyEntry[] = [];
let top = 0;

/** A key at `at` (its opening quote), unique among the object's keys from `first`; past its colon, or -1. */
function keyAt(at: number, first: number): number {
  if (b[at] !== QUOTE) return -1;
  // Lines from one call site have the same keys in the same order: the key the previous line had at this
  // place is tried first, compared in place.
  const guess = predicted[ordinal];
  let end: number;
  if (
    guess !== undefined &&
    b[at + 1] === guess.first &&
    b[at + 1 + guess.bytes.length] === QUOTE &&
    sameAt(b, guess.bytes, at + 1)
  ) {
    end = at + guess.bytes.length + 2;
    entry = guess;
  } else {
    end = stringEnd(at);
    const length = end - at - 2;
    // Bytes, at least as many as characters: a key near the bound errs toward the general path.
    if (end < 0 || escaped || length > d.maxKeyLength) return -1;
    entry = entryOf(b, at + 1, length);
    predicted[ordinal] = entry;
  }
  ordinal++;
  if (b[end] !== COLON) return -1;
  if ((entry.info & UNMODELLED) !== 0) return -1;
  const key = entry.key;
  if (first === 0 && (entry.info & UNCACHED) === 0) {
    // The top level: each entry remembers the line it was last met in.
    if (entry.line === lineSerial) return -1;
    entry.line = lineSerial;
  }
  // One entry per key name (while the tables have room; past that a repeated key is compared as text).
  else
    for (let i = first; i < top; i++) {
      const other = keys[i] as KeyEntry;
      if (other === entry || (other.info & UNCACHED && other.key === key)) return -1;
    }
  if (top - first >= d.maxKeys) return -1;
  keys[top++] = entry;
  return end + 1;
}

function object(at: number, depth: number, parentKey: string): number {
  if (depth >= d.maxDepth) return -1;
  let i = at + 1;
  if (b[i] === RBRACE) return i + 1;
  const first = top;
  for (;;) {
    i = keyAt(i, first);
    if (i < 0) return -1;
    i = member(i, depth, parentKey, entry.key, (entry.info & SECRET) !== 0);
    if (i < 0) return -1;
    const c = b[i++];
    if (c === COMMA) continue;
    top = first;
    return c === RBRACE ? i : -1;
  }
}

function array(at: number, depth: number): number {
  if (depth >= d.maxDepth) return -1;
  let i = at + 1;
  if (b[i] === RBRACKET) return i + 1;
  for (let n = 1; ; n++) {
    if (n > d.maxKeys) return -1;
    i = value(i, depth + 1);
    if (i < 0) return -1;
    const c = b[i++];
    if (c === COMMA) continue;
    return c === RBRACKET ? i : -1;
  }
}

/**
 * A top-level value as the walk leaves it: RANGE (it stands as it is, `scalarStart` to `scalarEnd`), TEXT
 * (a string, its JSON in `scalarJson`), NUMBER (the number in `scalarNumber`), or FAILED (anything else, or
 * censored). Past its end in `scalarEnd`.
 */
export const FAILED = 0;
export const RANGE = 1;
export const TEXT = 2;
export const NUMBER = 3;
export let scalarStart = 0;
export let scalarEnd = 0;
export let scalarJson = '';
export let scalarNumber = Number.NaN;
function scalar(at: number, key: string, secret: boolean): number {
  const c = b[at] as number;
  if (c === QUOTE) {
    const end = stringEnd(at);
    if (end < 0) return FAILED;
    scalarStart = at;
    scalarEnd = end;
    if (!escaped && !secret && d.clean(b, at + 1, end - 1)) return RANGE;
    const v = escaped ? (JSON.parse(textOf(at, end)) as string) : textOf(at + 1, end - 1);
    if (secret && d.censors(key, v)) return FAILED;
    scalarJson = JSON.stringify(d.keepsId(0, '', key, v) ? v : text(v));
    return TEXT;
  }
  if (c !== MINUS && !isDigit(c)) return FAILED;
  const end = numberEnd(at);
  if (end < 0) return FAILED;
  scalarStart = at;
  scalarEnd = end;
  const v = plain ? integer : Number(textOf(at, end));
  if (secret && d.censors(key, v)) return FAILED;
  const walked = plain && end - at < 13 ? v : d.number(v);
  if (typeof walked !== 'number') return FAILED;
  scalarNumber = walked;
  return NUMBER;
}

/** Read a line from `start` on, its document's members written into `out` (from its length on). */
export function startLine(
  decisions: RedactionDecisions,
  redactor: Redactor,
  censor: Buffer,
  table: KeyTable,
  out: ByteSink,
  start: number,
): void {
  d = decisions;
  text = redactor.text;
  censorJson = censor;
  entryOf = table.entryOf;
  rest = out;
  copyFrom = start;
  muted = 0;
  top = 0;
  ordinal = 0;
  lineSerial++;
  replaced = 0;
  predicted = table.guesses;
}

/** A top-level key at `at`; past its colon, or -1 (`entry`: its entry). */
export const topKey = (at: number): number => keyAt(at, 0);

/**
 * The top-level member whose key ends before `at` and starts at `i`, copied with the members before it
 * back to `runEnd` (the end of the last one copied, -1: none yet): past its value, or -1.
 */
export function restMember(i: number, at: number, runEnd: number, key: string, secret: boolean): number {
  if (runEnd !== i - 1) {
    endRuns(runEnd);
    rest.byte(COMMA);
    copyFrom = i;
  }
  const repeated = recall(entry, b, at);
  if (repeated >= 0) {
    ordinal += entry.memoKeys;
    return repeated;
  }
  const before = replaced;
  const keysBefore = ordinal;
  const e = entry;
  spanCount = 0;
  const end = member(at, 0, '', key, secret);
  if (end < 0) return -1;
  if (replaced === before) remember(e, b, at, end, ordinal - keysBefore, spans, spanCount, REST, 0);
  else e.memoLength = -1;
  return end;
}

/** The members copied so far end at `runEnd` (-1: none). */
export function endRuns(runEnd: number): void {
  if (runEnd > 0) rest.copy(b, copyFrom, runEnd);
}

/** The top-level value at `at` of a key the head takes (`kind`), as `scalar` reads it. */
export function topScalar(at: number, kind: number, key: string, secret: boolean): number {
  // The time changes line by line: it is read every time.
  const repeated = kind === TIME ? -1 : recall(entry, b, at);
  if (repeated >= 0) {
    scalarStart = at;
    scalarEnd = repeated;
    scalarNumber = entry.memoNumber;
    return entry.memoKind;
  }
  const got = scalar(at, key, secret);
  // Remembered exactly (no integer spans): the path reads a top-level number's value.
  if (kind !== TIME && got !== TEXT && got !== FAILED)
    remember(entry, b, at, scalarEnd, 0, spans, 0, got, scalarNumber);
  return got;
}
