/**
 * pino record → ECS 8.x document (https://www.elastic.co/guide/en/ecs/current/ecs-field-reference.html,
 * https://github.com/elastic/ecs-logging/blob/main/spec/spec.json). `@timestamp` comes first; `log.level`
 * and `ecs.version` are top-level dotted keys as the ECS logging spec asks; everything else is nested.
 *
 * Shapes Elasticsearch would reject are never produced: a user field that collides with an ECS field set in
 * an incompatible shape (`host: "web-1"` where ECS has the `host` object) is moved under `pino.*`, not dropped.
 */
import { ECS_VERSION } from '../src/ecs/version.js';
import { requestFields, responseFields } from './ecs-http.js';

export interface PinoConfig {
  /** pino's level labels by number, custom levels included (sent by pino to the transport). */
  levels: { labels: Record<number, string> };
  messageKey: string;
  errorKey: string;
}

export const defaultPinoConfig: PinoConfig = {
  levels: { labels: { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' } },
  messageKey: 'msg',
  errorKey: 'err',
};

export interface ServiceFields {
  name: string;
  version?: string | undefined;
  environment?: string | undefined;
}

export interface EcsOptions {
  service: ServiceFields;
  /** `event.dataset`; for a data stream it must equal the stream's dataset. */
  dataset: string;
  /** Records the mapping had to repair (a timestamp no date could be made of). */
  counters?: { repaired: number };
}

/** A log record's time, once its unit is read: 1970 to 2100 (a number outside is no time of a log line). */
const LATEST_MS = Date.UTC(2100, 0, 1);

/**
 * `@timestamp` from a record's time: pino's epoch milliseconds, also its `unixTime` (seconds) and epoch
 * micro- or nanoseconds by their magnitude, or an ISO string; undefined when no valid date can be made.
 */
export function timestampOf(time: unknown): string | undefined {
  if (typeof time === 'string') {
    const ms = Date.parse(time);
    // Elasticsearch's default date format holds years 0000-9999.
    return Number.isFinite(ms) && ms >= -62167219200000 && ms <= 253402300799999 ? time : undefined;
  }
  if (typeof time !== 'number') return undefined;
  const ms = millisOf(time);
  return ms === -1 ? undefined : isoOf(ms);
}

/** The epoch milliseconds of a numeric time, rounded (timestampOf's reading of its unit); -1: no time. */
export function millisOf(time: number): number {
  if (!Number.isFinite(time)) return -1;
  let ms = time;
  if (Math.abs(ms) < 1e11)
    ms *= 1000; // seconds (1e11 ms is 1973; 1e11 s is the year 5138)
  else if (Math.abs(ms) >= 1e17)
    ms /= 1e6; // nanoseconds
  else if (Math.abs(ms) >= 1e14) ms /= 1e3; // microseconds
  return ms >= 0 && ms < LATEST_MS ? Math.round(ms) : -1;
}

/** ECS field sets whose top-level key is an object. A non-object user value there moves to `pino.<key>`. */
export const ECS_OBJECTS: ReadonlySet<string> = new Set([
  'agent',
  'client',
  'cloud',
  'code',
  'container',
  'data_stream',
  'destination',
  'device',
  'dns',
  'email',
  'error',
  'event',
  'faas',
  'file',
  'geo',
  'group',
  'host',
  'http',
  'interface',
  'log',
  'network',
  'observer',
  'orchestrator',
  'organization',
  'package',
  'process',
  'registry',
  'related',
  'rule',
  'server',
  'service',
  'source',
  'span',
  'threat',
  'tls',
  'trace',
  'transaction',
  'url',
  'user',
  'user_agent',
  'vulnerability',
  'db',
  'labels',
]);

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * `__proto__`, `constructor` and `prototype` are data here, never a way to an object's prototype: a logged
 * webhook body (`JSON.parse` keeps `"__proto__"` as an own key) must not reach `Object.prototype` of the
 * worker. Reads take own properties only; writes define own properties.
 */
const own = (o: Json, key: string): unknown => (Object.hasOwn(o, key) ? o[key] : undefined);
function put(o: Json, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}

/** Deep-merge `extra` into `target`; a leaf of `extra` that would overwrite a different value goes to `moved`. */
function mergeInto(target: Json, extra: Json, path: string, moved: Json): void {
  for (const [key, value] of Object.entries(extra)) {
    const existing = own(target, key);
    if (existing === undefined) put(target, key, value);
    else if (isObject(existing) && isObject(value)) mergeInto(existing, value, `${path}.${key}`, moved);
    else if (existing !== value) put(moved, `${path}.${key}`, value);
  }
}

function errorFields(err: unknown): Json | undefined {
  if (err === null || err === undefined) return undefined;
  if (typeof err !== 'object') return { message: String(err) };
  const e = err as Json;
  const out: Json = {};
  const type = e.type ?? e.name ?? (e.constructor as { name?: string } | undefined)?.name;
  if (typeof type === 'string' && type !== 'Object') out.type = type;
  if (e.message !== undefined) out.message = String(e.message);
  // pino-std-serializers already appends the cause chain ("caused by: ...") to `stack`.
  let stack =
    typeof e.stack === 'string' ? e.stack : typeof e.stack_trace === 'string' ? e.stack_trace : undefined;
  let cause = e.cause;
  for (let depth = 0; stack !== undefined && isObject(cause) && depth < 8; depth++) {
    const causeStack = typeof cause.stack === 'string' ? cause.stack : undefined;
    if (causeStack && !stack.includes(causeStack)) stack += `\ncaused by: ${causeStack}`;
    cause = cause.cause;
  }
  if (stack !== undefined) out.stack_trace = stack;
  if (typeof e.code === 'string' || typeof e.code === 'number') out.code = String(e.code);
  if (typeof e.id === 'string') out.id = e.id;
  return out;
}

const handledCache = new WeakMap<PinoConfig, Set<string>>();

/** Record keys the mapping consumes (and so does not copy), per pino configuration. */
export function handledKeys(pino: PinoConfig): Set<string> {
  let keys = handledCache.get(pino);
  if (!keys) {
    keys = new Set([
      'time',
      '@timestamp',
      'level',
      'log.level',
      pino.messageKey,
      'message',
      'ecs.version',
      'pid',
      'hostname',
      'name',
      'trace_id',
      'span_id',
      'trace_flags',
      'traceId',
      'spanId',
      'traceFlags',
      pino.errorKey,
      'req',
      'res',
      'responseTime',
      'v',
    ]);
    handledCache.set(pino, keys);
  }
  return keys;
}

// Records logged in the same millisecond share their timestamp, and those of the same second its text up to
// the milliseconds: `toISOString` runs once a second, not once a record.
let lastSecond = Number.NaN;
let secondPrefix = '';
/** `YYYY-MM-DDTHH:MM:SS.` of a time from millisOf (1970 to 2100: four-digit years). */
export const secondPrefixOf = (time: number): string => {
  const second = Math.floor(time / 1000);
  if (second !== lastSecond) {
    secondPrefix = new Date(second * 1000).toISOString().slice(0, 20);
    lastSecond = second;
  }
  return secondPrefix;
};
const isoOf = (time: number): string => {
  const ms = time % 1000;
  return `${secondPrefixOf(time)}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
};

/** Map one parsed pino record to an ECS document. */
export function toEcs(record: Json, pino: PinoConfig, options: EcsOptions): Json {
  const doc: Json = {};
  const moved: Json = {};
  const timestamp = timestampOf(record['@timestamp'] ?? record.time);
  doc['@timestamp'] = timestamp ?? new Date().toISOString();
  if (timestamp === undefined) {
    // Not a date Elasticsearch could parse (a data stream rejects the document): now, and the original kept.
    put(
      moved,
      record['@timestamp'] !== undefined ? '@timestamp' : 'time',
      record['@timestamp'] ?? record.time,
    );
    if (options.counters) options.counters.repaired++;
  }
  // pino's own level always wins; a `log.level` the app logged as a field is kept under the namespace.
  const level =
    typeof record.level === 'number' || typeof record.level === 'string' ? record.level : undefined;
  const userLevel = record['log.level'];
  if (level !== undefined)
    doc['log.level'] = typeof level === 'number' ? (pino.levels.labels[level] ?? String(level)) : level;
  else doc['log.level'] = typeof userLevel === 'string' ? userLevel : 'info';
  if (userLevel !== undefined && userLevel !== doc['log.level']) put(moved, 'log.level', userLevel);
  const message = record[pino.messageKey] ?? record.message;
  // Both `msg` and `message` logged: the second is the app's too, kept under the namespace.
  if (pino.messageKey !== 'message' && record[pino.messageKey] !== undefined && record.message !== undefined)
    put(moved, 'message', record.message);
  if (message !== undefined) doc.message = typeof message === 'string' ? message : JSON.stringify(message);
  doc['ecs.version'] = ECS_VERSION;

  const service: Json = { name: options.service.name };
  if (options.service.version) service.version = options.service.version;
  if (options.service.environment) service.environment = options.service.environment;
  doc.service = service;
  // `event.dataset` is the stream's dataset (ECS: it equals `data_stream.dataset`); a record's own moves to
  // `pino.event.dataset` like any other collision.
  doc.event = { dataset: options.dataset };
  if (typeof record.pid === 'number') doc.process = { pid: record.pid };
  if (typeof record.hostname === 'string') doc.host = { hostname: record.hostname };
  if (typeof record.name === 'string') doc.log = { logger: record.name };

  const traceId = record.trace_id ?? record.traceId;
  const spanId = record.span_id ?? record.spanId;
  if (typeof traceId === 'string') doc.trace = { id: traceId };
  if (typeof spanId === 'string') doc.span = { id: spanId };

  // pino's `err` (pino-std-serializers shape), or an `error` object (already ECS-shaped from pgsight's logger).
  const errorKey =
    record[pino.errorKey] !== undefined ? pino.errorKey : isObject(record.error) ? 'error' : undefined;
  const err = errorKey === undefined ? undefined : record[errorKey];
  const errorDoc = errorFields(err);
  if (errorDoc) doc.error = errorDoc;
  if (isObject(record.req)) requestFields(record.req, doc);
  if (isObject(record.res)) responseFields(record.res, doc);
  if (typeof record.responseTime === 'number')
    (doc.event as Json).duration = Math.round(record.responseTime * 1e6);

  const handled = handledKeys(pino);
  for (const key in record) {
    const value = record[key];
    if (handled.has(key) || key === errorKey || value === undefined) continue;
    if (key.includes('.')) {
      // Dotted keys (`http.request.id` from a log context) become nested objects, so a consumer reading the
      // ECS path finds them; one that would clash with a value already there moves under `pino.` (kept
      // dotted beside the object, Elasticsearch would index both values in one field).
      if (key.startsWith('data_stream.') || !setPath(doc, key, value)) put(moved, key, value);
      continue;
    }
    const existing = own(doc, key);
    if (key === 'data_stream')
      put(moved, key, value); // the transport's: constant_keyword in the template
    else if (ECS_OBJECTS.has(key)) {
      if (!isObject(value)) put(moved, key, value);
      else if (existing === undefined) put(doc, key, value);
      else if (isObject(existing)) mergeInto(existing, value, key, moved);
      else put(moved, key, value);
    } else if (existing === undefined) put(doc, key, value);
    else put(moved, key, value);
  }
  if (isObject(doc.labels)) doc.labels = sanitizedLabels(doc.labels);
  if (Object.keys(moved).length > 0) doc.pino = { ...(isObject(doc.pino) ? doc.pino : {}), ...moved };
  return doc;
}

/**
 * Label keys may not hold `.`, `*` or `\\` (the ECS logging spec: a dotted label key would be expanded into an
 * object by Elasticsearch and conflict with the keyword mapping of `labels.*`); they become `_`.
 */
function sanitizedLabels(labels: Json): Json {
  let clean = true;
  for (const key in labels) if (/[.*\\]/.test(key)) clean = false;
  if (clean) return labels;
  const out: Json = {};
  for (const [key, value] of Object.entries(labels)) put(out, key.replace(/[.*\\]/g, '_'), value);
  return out;
}

/** Set `a.b.c` as nested objects; false when a non-object value is in the way. */
function setPath(doc: Json, dotted: string, value: unknown): boolean {
  const parts = dotted.split('.');
  let target = doc;
  for (let i = 0; i < parts.length - 1; i++) {
    const part = parts[i] as string;
    const next = own(target, part);
    if (next === undefined) {
      const created: Json = {};
      put(target, part, created);
      target = created;
    } else if (isObject(next)) target = next;
    else return false;
  }
  const leaf = parts[parts.length - 1] as string;
  const existing = own(target, leaf);
  if (existing !== undefined && existing !== value) return false;
  put(target, leaf, value);
  return true;
}

/** A line that is not JSON, kept as the message of a record that says so. */
export function unparsedLine(line: string, options: EcsOptions): Json {
  return {
    '@timestamp': new Date().toISOString(),
    'log.level': 'info',
    message: line,
    'ecs.version': ECS_VERSION,
    service: { name: options.service.name },
    event: { dataset: options.dataset, kind: 'event', original: line },
    tags: ['pgsight_unparsed_line'],
  };
}
