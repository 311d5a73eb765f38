/**
 * pgsight/transport's options and their check: every problem is listed at once (PGSIGHT_ERR_TRANSPORT_OPTIONS),
 * before the transport starts, so that a bad setting is reported instead of failing on the first record.
 */
import { Problems } from '../src/config/problems.js';
import type { ElasticsearchOutputOptions } from './outputs/elasticsearch/index.js';
import type { LogstashOutputOptions } from './outputs/logstash.js';
import type { PrettyOutputOptions } from './outputs/pretty.js';
import type { StreamOutputOptions } from './outputs/stream.js';
import { catastrophicShape, type RedactOptions } from './redact/index.js';

export type OutputOptions =
  | StreamOutputOptions
  | ElasticsearchOutputOptions
  | LogstashOutputOptions
  | PrettyOutputOptions;

export interface TransportOptions {
  /** `service.*` of every document. @default from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES / package.json / NODE_ENV */
  service?: { name?: string; version?: string; environment?: string };
  /** Added to the built-in redaction lists. */
  redact?: RedactOptions;
  /** @default [{ type: 'stdout' }] */
  outputs?: OutputOptions[];
  /** Interval of the status line on stderr (ms); 0 turns it off. The final summary is always written. @default 60000 */
  statusIntervalMs?: number;
  /** Time the close (at logger end / process exit) may take before what is left is spooled (ms). @default 8000 */
  closeTimeoutMs?: number;
  /**
   * Wait for the configuration pino sends to its transports (custom levels, messageKey, errorKey). Set it to
   * false for a transport created with pino.transport() but not handed to a pino() logger at once (pino only
   * sends the configuration from the logger's constructor). @default true
   */
  expectPinoConfig?: boolean;
  /**
   * MiB the worker holds as a reserve in its heap, so that V8 sizes the old generation for the chunks it
   * reads (transports/heap-reserve.ts): the worker's heap is that much larger, and its full collections
   * rare; 0 holds none. Not taken when the transport runs on the app's own thread. @default 32
   */
  heapReserveMb?: number;
  /** The final summary on stderr: always, only when something was retried, spooled, dead-lettered, dropped, failure-stored or repaired, or never. @default 'on-trouble' */
  summary?: 'always' | 'on-trouble' | 'never';
}

/** `logs-<dataset>-<namespace>`, the data stream naming scheme, with no `-` inside either part. */
export const DATA_STREAM = /^logs-([^-]+)-([^-]+)$/;

const TRANSPORT_KEYS = new Set([
  'service',
  'redact',
  'outputs',
  'statusIntervalMs',
  'closeTimeoutMs',
  'heapReserveMb',
  'expectPinoConfig',
  'summary',
  // Added by pino.transport() itself.
  '$context',
  'pinoWillSendConfig',
]);
/** The Elasticsearch output's whole-number options. */
const ES_NUMBERS = [
  'flushBytes',
  'flushIntervalMs',
  'concurrency',
  'maxQueueBytes',
  'maxBackpressureMs',
  'requestTimeoutMs',
  'maxSpoolBytes',
] as const;
const OUTPUT_KEYS: Record<string, ReadonlySet<string>> = {
  stdout: new Set(['type']),
  stderr: new Set(['type']),
  file: new Set(['type', 'path', 'rotationCheckMs']),
  pretty: new Set(['type', 'colorize', 'details']),
  logstash: new Set(['type', 'host', 'port', 'spoolDir', 'maxSpoolBytes', 'retry']),
  elasticsearch: new Set([
    'type',
    'node',
    'dataStream',
    'auth',
    'spoolDir',
    'deadLetterPath',
    'retry',
    ...ES_NUMBERS,
  ]),
};
const REDACT_KEYS = new Set([
  'keys',
  'patterns',
  'censor',
  'maxDepth',
  'maxKeys',
  'maxStringLength',
  'maxKeyLength',
]);

/** An http(s) URL Node can parse (a port over 65535 or an unclosed `[` is not one). */
export function isHttpUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

/**
 * What Elasticsearch refuses in an index or data stream name (the create-index API's rules): upper case, the
 * characters \\ / * ? " < > | , # and space, a leading - _ +, more than 255 bytes.
 */
function dataStreamProblem(name: string): string | undefined {
  if (name !== name.toLowerCase()) return 'must be lower case';
  if (/[\\/*?"<>|,# ]/.test(name)) return 'must not contain \\ / * ? " < > | , # or a space';
  if (/^[-_+]/.test(name)) return 'must not start with - _ or +';
  if (Buffer.byteLength(name) > 255) return 'must be at most 255 bytes';
  if (!DATA_STREAM.test(name)) return "must be logs-<dataset>-<namespace> with no '-' inside either";
  return undefined;
}

function checkOutput(problems: Problems, o: OutputOptions, at: string): void {
  const known = OUTPUT_KEYS[(o as { type: string }).type];
  if (!known) {
    problems.add(
      `${at}.type must be stdout, stderr, file, pretty, elasticsearch or logstash, got ${JSON.stringify((o as { type: unknown }).type)}`,
    );
    return;
  }
  problems.unknownKeys(o, known, at);
  if (o.type === 'file' && (typeof o.path !== 'string' || o.path === ''))
    problems.add(`${at}.path must be a file path`);
  if (o.type === 'elasticsearch') {
    if (!isHttpUrl(o.node)) problems.add(`${at}.node must be an http(s) URL, got ${JSON.stringify(o.node)}`);
    const dataStream = o.dataStream;
    const why = dataStream === undefined ? undefined : dataStreamProblem(String(dataStream));
    if (why) problems.add(`${at}.dataStream ${why}, got ${JSON.stringify(dataStream)}`);
    for (const key of ES_NUMBERS)
      problems.wholeNumber(`${at}.${key}`, o[key], key === 'concurrency' ? 1 : 0, Number.MAX_SAFE_INTEGER);
  }
  if (o.type === 'logstash') {
    if (typeof o.host !== 'string' || o.host === '') problems.add(`${at}.host must be a host name`);
    if (!Number.isInteger(o.port) || o.port <= 0 || o.port > 65535)
      problems.add(`${at}.port must be a TCP port, got ${JSON.stringify(o.port)}`);
  }
}

export function validateTransportOptions(options: TransportOptions): void {
  const problems = new Problems();
  if (options === null || typeof options !== 'object') {
    problems.add(`options must be an object, got ${JSON.stringify(options)}`);
    problems.throwIfAny('PGSIGHT_ERR_TRANSPORT_OPTIONS', 'pgsight/transport: invalid options');
  }
  problems.unknownKeys(options, TRANSPORT_KEYS);
  const outputs = options.outputs ?? [{ type: 'stdout' }];
  if (!Array.isArray(outputs) || outputs.length === 0) problems.add('outputs must be a non-empty array');
  else
    outputs.forEach((o, i) => {
      if (!o || typeof o !== 'object') problems.add(`outputs[${i}] must be an object`);
      else checkOutput(problems, o, `outputs[${i}]`);
    });
  problems.wholeNumber('statusIntervalMs', options.statusIntervalMs, 0, 86_400_000);
  problems.wholeNumber('closeTimeoutMs', options.closeTimeoutMs, 0, 600_000);
  problems.wholeNumber('heapReserveMb', options.heapReserveMb, 0, 1024);
  problems.oneOf('summary', options.summary, ['always', 'on-trouble', 'never']);
  if (options.expectPinoConfig !== undefined && typeof options.expectPinoConfig !== 'boolean')
    problems.add(`expectPinoConfig must be true or false, got ${JSON.stringify(options.expectPinoConfig)}`);
  if (options.redact !== undefined) {
    if (options.redact === null || typeof options.redact !== 'object')
      problems.add('redact must be an object');
    else problems.unknownKeys(options.redact, REDACT_KEYS, 'redact');
  }
  for (const source of options.redact?.patterns ?? []) {
    try {
      new RegExp(source);
    } catch (error) {
      problems.add(
        `redact.patterns: ${JSON.stringify(source)} is not a regular expression (${(error as Error).message})`,
      );
      continue;
    }
    if (catastrophicShape(source))
      problems.add(
        `redact.patterns: ${JSON.stringify(source)} repeats a group that itself repeats, which takes exponential time on a string it does not match; rewrite it without the nested repetition (e.g. (ab)+ or a+b+)`,
      );
  }
  problems.throwIfAny('PGSIGHT_ERR_TRANSPORT_OPTIONS', 'pgsight/transport: invalid options');
}
