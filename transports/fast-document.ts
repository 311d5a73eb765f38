/**
 * The one-pass path: a serialized pino line straight to the JSON of its ECS document, without `JSON.parse`
 * and `JSON.stringify`, for the lines it models; `undefined` for any other line, which then takes the general
 * path (parse → redact → toEcs → stringify). Both give the same bytes; test/transport-differential.test.ts
 * runs random and hostile records through the two.
 *
 * Modelled: what pino writes. An object without whitespace between tokens, no raw control character, keys
 * unique per object, unescaped, not array indexes, within the redaction bounds; at the top level no dotted key
 * and no key the mapping treats apart beyond pino's own (`level`, `time`, `pid`, `hostname`, `name`, the
 * message key, `trace_id`, `span_id`): a line with `err`, `req`, `service`, `labels`... falls back. Values are
 * copied as they stand when the redaction engine's decisions (`Redactor.decisions`) say the walk would leave
 * them so, and replaced by what the walk would make of them otherwise; a number not in the form
 * `JSON.stringify` writes is re-written in it.
 *
 * Hand-written: the cost it removes is the parse and stringify themselves, which no JSON library avoids.
 */
import { ECS_VERSION } from '../src/ecs/version.js';
import { type EcsOptions, type PinoConfig, timestampOf } from './ecs.js';
import {
  CONTAINER,
  createKeyTable,
  DROPPED,
  FALLBACK,
  HOSTNAME,
  type KeyEntry,
  type KeyTable,
  LEVEL,
  MESSAGE,
  NAME,
  PID,
  REST,
  REST_OBJECT,
  SECRET,
  sameAt,
  TIME,
  TRACE_ID,
  UNCACHED,
  UNMODELLED,
} from './fast-keys.js';
import {
  begin,
  COLON,
  COMMA,
  escaped,
  finish,
  integer,
  isDigit,
  LBRACE,
  LBRACKET,
  lineEnd,
  literalEnd,
  MINUS,
  numberEnd,
  plain,
  QUOTE,
  RBRACE,
  RBRACKET,
  s,
  stringEnd,
} from './fast-tokens.js';
import type { RedactionDecisions, Redactor } from './redact/index.js';

/** The document of the line `data.slice(start, end)` with `id`, or undefined: take the general path. */
export type FastPath = (data: string, start: number, end: number, id: string) => string | undefined;

const NOT_CENSORED = -2;

// The document being written: module state, so that the scan allocates only the strings it has to.
let d: RedactionDecisions;
let text: (value: string) => string = String;
let censorJson = '';
/** The document's members after the head, as written so far, and where the uncopied part of the line starts. */
let out = '';
let copyFrom = 0;
/** Inside a value that is censored whole: read for its end only. */
let muted = 0;

function replace(start: number, end: number, json: string): void {
  if (muted > 0) return;
  out += s.slice(copyFrom, start);
  out += json;
  copyFrom = end;
}

/** A string as the walk leaves it; `key` is set for an object's member (trace ids keep their shape). */
function stringValue(at: number, end: number, depth: number, parentKey: string, key?: string): void {
  if (muted > 0) return;
  if (!escaped) {
    if (d.clean(s, at + 1, end - 1)) return;
    const raw = s.slice(at + 1, end - 1);
    if (key !== undefined && d.keepsId(depth, parentKey, key, raw)) return;
    const redacted = text(raw);
    if (redacted !== raw) replace(at, end, JSON.stringify(redacted));
    return;
  }
  const value = JSON.parse(s.slice(at, end)) as string;
  const json = JSON.stringify(
    key !== undefined && d.keepsId(depth, parentKey, key, value) ? value : text(value),
  );
  if (json.length !== end - at || json !== s.slice(at, end)) replace(at, end, json);
}

function numberValue(at: number, end: number): void {
  if (muted > 0) return;
  // Below 10^12 no number is a card number.
  if (plain && (end - at < 13 || d.number(integer) === integer)) return;
  const raw = s.slice(at, end);
  const json = JSON.stringify(d.number(Number(raw)));
  if (json !== raw) replace(at, end, json);
}

/** A value that is not an object's member (an array's item), at `depth`. */
function value(at: number, depth: number): number {
  const c = s.charCodeAt(at);
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
  const c = s.charCodeAt(at);
  let end: number;
  let v: unknown = CONTAINER;
  if (c === QUOTE) {
    end = stringEnd(at);
    if (end < 0) return -1;
    v = escaped ? JSON.parse(s.slice(at, end)) : s.slice(at + 1, end - 1);
  } else if (c === LBRACE || c === LBRACKET) {
    muted++;
    end = value(at, depth);
    muted--;
  } else if (c === MINUS || isDigit(c)) {
    end = numberEnd(at);
    v = Number(s.slice(at, end));
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
  const c = s.charCodeAt(at);
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
let entry: KeyEntry;
let entryOf: KeyTable['entryOf'];
/** Which key the previous line had at each place (its n-th key, all depths counted), and the place now. */
let predicted: (KeyEntry | undefined)[] = [];
let ordinal = 0;
/** Keys of the objects being read, innermost last, up to `top`. */
const keys: KeyEntry[] = [];
let top = 0;

/** A key at `at` (its opening quote), unique among the object's keys from `first`; past its colon, or -1. */
function keyAt(at: number, first: number): number {
  if (s.charCodeAt(at) !== QUOTE) return -1;
  // Lines from one call site have the same keys in the same order: the key the previous line had at this
  // place is tried first, compared in place.
  const guess = predicted[ordinal];
  let end: number;
  if (
    guess !== undefined &&
    s.charCodeAt(at + 1) === guess.first &&
    s.charCodeAt(at + 1 + guess.key.length) === QUOTE &&
    sameAt(s, guess.key, at + 1)
  ) {
    end = at + guess.key.length + 2;
    entry = guess;
  } else {
    end = stringEnd(at);
    const length = end - at - 2;
    if (end < 0 || escaped || length > d.maxKeyLength) return -1;
    entry = entryOf(s, at + 1, length);
    predicted[ordinal] = entry;
  }
  ordinal++;
  if (s.charCodeAt(end) !== COLON) return -1;
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
  if (s.charCodeAt(i) === RBRACE) return i + 1;
  const first = top;
  for (;;) {
    i = keyAt(i, first);
    if (i < 0) return -1;
    i = member(i, depth, parentKey, entry.key, (entry.info & SECRET) !== 0);
    if (i < 0) return -1;
    const c = s.charCodeAt(i++);
    if (c === COMMA) continue;
    top = first;
    return c === RBRACE ? i : -1;
  }
}

function array(at: number, depth: number): number {
  if (depth >= d.maxDepth) return -1;
  let i = at + 1;
  if (s.charCodeAt(i) === RBRACKET) return i + 1;
  for (let n = 1; ; n++) {
    if (n > d.maxKeys) return -1;
    i = value(i, depth + 1);
    if (i < 0) return -1;
    const c = s.charCodeAt(i++);
    if (c === COMMA) continue;
    return c === RBRACKET ? i : -1;
  }
}

/**
 * A top-level string as the walk leaves it, as JSON, or for a number, NUMBER with the number as the walk
 * leaves it in `scalarNumber` (undefined: anything else, or censored). Past its end in `scalarEnd`.
 */
const NUMBER = '';
let scalarEnd = 0;
let scalarNumber = Number.NaN;
function scalar(at: number, key: string, secret: boolean): string | undefined {
  const c = s.charCodeAt(at);
  if (c === QUOTE) {
    const end = stringEnd(at);
    if (end < 0) return undefined;
    scalarEnd = end;
    if (!escaped && !secret && d.clean(s, at + 1, end - 1)) return s.slice(at, end);
    const v = escaped ? (JSON.parse(s.slice(at, end)) as string) : s.slice(at + 1, end - 1);
    if (secret && d.censors(key, v)) return undefined;
    return JSON.stringify(d.keepsId(0, '', key, v) ? v : text(v));
  }
  if (c !== MINUS && !isDigit(c)) return undefined;
  const end = numberEnd(at);
  if (end < 0) return undefined;
  scalarEnd = end;
  const v = plain ? integer : Number(s.slice(at, end));
  if (secret && d.censors(key, v)) return undefined;
  const walked = plain && end - at < 13 ? v : d.number(v);
  if (typeof walked !== 'number') return undefined;
  scalarNumber = walked;
  return NUMBER;
}

/** The one-pass path for one transport; undefined when its options are none it models. */
export function createFastPath(redactor: Redactor, pino: PinoConfig, ecs: EcsOptions): FastPath | undefined {
  const decisions = redactor.decisions;
  const table = createKeyTable(decisions, pino);
  if (table === undefined) return undefined;
  const labels = new Map<number, string>();
  const levelJson = (level: number): string => {
    let json = labels.get(level);
    if (json === undefined) {
      json = JSON.stringify(pino.levels.labels[level] ?? String(level));
      if (labels.size < 1000) labels.set(level, json);
    }
    return json;
  };
  const service: Record<string, string> = { name: ecs.service.name };
  if (ecs.service.version) service.version = ecs.service.version;
  if (ecs.service.environment) service.environment = ecs.service.environment;
  const middle = `,"ecs.version":${JSON.stringify(ECS_VERSION)},"service":${JSON.stringify(service)},"event":{"dataset":${JSON.stringify(ecs.dataset)},"id":`;
  const censor = JSON.stringify(decisions.censor);

  function document(from: number, id: string): string | undefined {
    let timestamp: string | undefined;
    let level: string | undefined;
    let message = '';
    // The head's optional members, written in toEcs's order whatever the record's.
    let process = '';
    let host = '';
    let logger = '';
    let trace = '';
    let span = '';
    // Members copied from the line run on (commas included) until one the head takes: a few pieces a line.
    let runEnd = -1;
    let i = from + 1;
    for (;;) {
      const at = keyAt(i, 0);
      if (at < 0) return undefined;
      const { key, info } = entry;
      const kind = info & 15;
      const secret = (info & SECRET) !== 0;
      if (kind === REST || kind === REST_OBJECT) {
        if (kind === REST_OBJECT && s.charCodeAt(at) !== LBRACE) return undefined;
        // An ECS field set's value censored whole would no longer be an object: the general path moves it.
        if (kind === REST_OBJECT && secret) return undefined;
        if (runEnd !== i - 1) {
          if (runEnd > 0) out += s.slice(copyFrom, runEnd);
          out += ',';
          copyFrom = i;
        }
        i = member(at, 0, '', key, secret);
        if (i < 0) return undefined;
        runEnd = i;
      } else if (kind === FALLBACK) return undefined;
      else {
        const json = scalar(at, key, secret);
        if (json === undefined) return undefined;
        i = scalarEnd;
        const number = scalarNumber;
        const isString = json !== NUMBER;
        if (kind === TIME) timestamp = isString ? undefined : timestampOf(number);
        else if (kind === LEVEL) level = isString ? undefined : levelJson(number);
        else if (kind === PID) {
          if (isString) return undefined;
          process = `,"process":{"pid":${String(number)}}`;
        } else if (kind !== DROPPED) {
          if (!isString) return undefined;
          if (kind === MESSAGE) message = `,"message":${json}`;
          else if (kind === HOSTNAME) host = `,"host":{"hostname":${json}}`;
          else if (kind === NAME) logger = `,"log":{"logger":${json}}`;
          else if (kind === TRACE_ID) trace = `,"trace":{"id":${json}}`;
          else span = `,"span":{"id":${json}}`;
        }
        if ((kind === TIME && timestamp === undefined) || (kind === LEVEL && level === undefined))
          return undefined;
      }
      const c = s.charCodeAt(i);
      if (c === COMMA) i++;
      else if (c === RBRACE && i + 1 === lineEnd) break;
      else return undefined;
    }
    if (timestamp === undefined || level === undefined) return undefined;
    if (runEnd > 0) out += s.slice(copyFrom, runEnd);
    // toEcs's order: @timestamp, log.level, message, ecs.version, service, event, process..span, the rest.
    return `{"@timestamp":"${timestamp}","log.level":${level}${message}${middle}"${id}"}${process}${host}${logger}${trace}${span}${out}}`;
  }

  return (data: string, start: number, end: number, id: string): string | undefined => {
    if (data.charCodeAt(start) !== LBRACE || data.charCodeAt(start + 1) === RBRACE || end - start < 2)
      return undefined;
    const from = begin(data, start, end);
    if (from < 0) return undefined;
    d = decisions;
    text = redactor.text;
    censorJson = censor;
    entryOf = table.entryOf;
    out = '';
    copyFrom = from;
    muted = 0;
    top = 0;
    ordinal = 0;
    lineSerial++;
    predicted = table.guesses;
    try {
      return document(from, id);
    } catch {
      return undefined; // a bad escape: the general path says what the line is
    } finally {
      finish();
      out = '';
    }
  };
}
