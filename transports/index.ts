/**
 * `pgsight/transport`: one pino transport that parses each line once, redacts it, maps it to ECS, then fans
 * it out to every output, so no output ever sees an unredacted record (pino's multi-target mode would hand
 * each target the raw line).
 *
 *   app thread: pino serializes ──(thread-stream)──▶ worker: parse → redact → ECS → id ─┬▶ stdout / file
 *                                                                                     ├▶ Elasticsearch _bulk
 *                                                                                     └▶ Logstash json_lines
 *
 * Shipping trouble never becomes an 'error' on the stream (that would kill pino's worker and every later log
 * call): it shows in counters, a periodic status line on stderr, and a final summary.
 */
import { randomBytes } from 'node:crypto';
import { writeSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import build from 'pino-abstract-transport';
import { processConfig } from '../src/config/env.js';
import { Problems } from '../src/config/problems.js';
import { defaultPinoConfig, type PinoConfig, toEcs, unparsedLine } from './ecs.js';
import type { ElasticsearchOutputOptions } from './outputs/elasticsearch/index.js';
import type { LogstashOutputOptions } from './outputs/logstash.js';
import { emptyStats, type Output, type OutputStats } from './outputs/output.js';
import type { PrettyOutputOptions } from './outputs/pretty.js';
import { createStreamOutput, type StreamOutputOptions } from './outputs/stream.js';
import { catastrophicShape, createRedactor, type RedactOptions } from './redact/index.js';

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
  /** The final summary on stderr: always, only when something was retried, spooled, dead-lettered or dropped, or never. @default 'always' */
  summary?: 'always' | 'on-trouble' | 'never';
}

const UNPARSED = Symbol('pgsight.unparsed');

/** Straight to fd 2: a worker's process.stderr goes through the main thread, which may already be exiting. */
function writeStderr(line: string): void {
  try {
    writeSync(2, line);
  } catch {
    // stderr closed: nothing else to tell
  }
}
const DATA_STREAM = /^logs-([^-]+)-([^-]+)$/;

/**
 * The default data stream is `logs-pgsight.<service>-default`: the prefix is what pgsight's index template
 * (`dashboards/elasticsearch/`) matches, above the built-in `logs-*-*` template, without claiming every
 * other `logs-*` stream of the cluster.
 */
export const DATASET_PREFIX = 'pgsight.';

/** Dataset names may not contain '-' (data stream naming scheme); other odd characters become '_'. */
const datasetOf = (name: string) =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9_.]/g, '_')
    .slice(0, 100) || 'app';

function validate(options: TransportOptions): void {
  const problems = new Problems();
  const outputs = options.outputs ?? [{ type: 'stdout' }];
  if (!Array.isArray(outputs) || outputs.length === 0) problems.add('outputs must be a non-empty array');
  else
    outputs.forEach((o, i) => {
      const at = `outputs[${i}]`;
      if (!o || typeof o !== 'object') problems.add(`${at} must be an object`);
      else if (o.type === 'file' && (typeof o.path !== 'string' || o.path === ''))
        problems.add(`${at}.path must be a file path`);
      else if (o.type === 'elasticsearch') {
        if (typeof o.node !== 'string' || !/^https?:\/\//.test(o.node))
          problems.add(`${at}.node must be an http(s) URL, got ${JSON.stringify(o.node)}`);
        if (o.dataStream !== undefined && !DATA_STREAM.test(o.dataStream))
          problems.add(
            `${at}.dataStream must be logs-<dataset>-<namespace> with no '-' inside either, got ${JSON.stringify(o.dataStream)}`,
          );
      } else if (o.type === 'logstash') {
        if (typeof o.host !== 'string' || o.host === '') problems.add(`${at}.host must be a host name`);
        if (!Number.isInteger(o.port) || o.port <= 0 || o.port > 65535)
          problems.add(`${at}.port must be a TCP port, got ${JSON.stringify(o.port)}`);
      } else if (o.type !== 'stdout' && o.type !== 'stderr' && o.type !== 'file' && o.type !== 'pretty')
        problems.add(
          `${at}.type must be stdout, stderr, file, pretty, elasticsearch or logstash, got ${JSON.stringify((o as { type: unknown }).type)}`,
        );
    });
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

export interface TransportStats extends OutputStats {
  received: number;
  unparsed: number;
}

function summary(stats: TransportStats, outputs: Output[]): string {
  const per = outputs.map((o) => `${o.name}: ${JSON.stringify(o.stats)}`).join('; ');
  return `pgsight/transport: received=${stats.received} shipped=${stats.shipped} retried=${stats.retried} spooled=${stats.spooled} dead_lettered=${stats.deadLettered} dropped=${stats.dropped} unparsed=${stats.unparsed} (${per})\n`;
}

function totals(received: number, unparsed: number, outputs: Output[]): TransportStats {
  const total: TransportStats = { ...emptyStats(), received, unparsed };
  for (const o of outputs) {
    total.shipped += o.stats.shipped;
    total.retried += o.stats.retried;
    total.spooled += o.stats.spooled;
    total.deadLettered += o.stats.deadLettered;
    total.dropped += o.stats.dropped;
  }
  return total;
}

export default async function pgsightTransport(options: TransportOptions = {}) {
  validate(options);
  const config = processConfig();
  const service = {
    name: options.service?.name ?? config.service.name,
    version: options.service?.version ?? config.service.version,
    environment: options.service?.environment ?? config.service.environment,
  };
  const outputOptions = options.outputs ?? [{ type: 'stdout' as const }];
  const es = outputOptions.find((o): o is ElasticsearchOutputOptions => o.type === 'elasticsearch');
  const dataset = es?.dataStream ? (DATA_STREAM.exec(es.dataStream)?.[1] as string) : datasetOf(service.name);
  const ecs = { service, dataset };
  const redact = createRedactor(options.redact);
  // Output modules are loaded only when configured: the worker of a stdout-only logger starts without the
  // Elasticsearch client or pino-pretty (pgsight's own logger starts its worker at its first record).
  const outputs: Output[] = await Promise.all(
    outputOptions.map(async (o): Promise<Output> => {
      if (o.type === 'elasticsearch')
        return (await import('./outputs/elasticsearch/index.js')).createElasticsearchOutput(
          o,
          `logs-${DATASET_PREFIX}${dataset}-default`,
        );
      if (o.type === 'logstash') return (await import('./outputs/logstash.js')).createLogstashOutput(o);
      if (o.type === 'pretty') return (await import('./outputs/pretty.js')).createPrettyOutput(o);
      return createStreamOutput(o);
    }),
  );

  // Ids: this transport instance's random prefix and a sequence. Stable across retries and spool replays of
  // one record; two identical records get two ids.
  const prefix = `${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;
  let seq = 0;
  let received = 0;
  let unparsed = 0;
  let pino: PinoConfig = defaultPinoConfig;

  const statusIntervalMs = options.statusIntervalMs ?? 60_000;
  let lastStatus = '';
  const status =
    statusIntervalMs > 0
      ? setInterval(() => {
          const line = summary(totals(received, unparsed, outputs), outputs);
          if (line !== lastStatus) writeStderr(line);
          lastStatus = line;
        }, statusIntervalMs).unref()
      : undefined;

  const closeTimeoutMs = options.closeTimeoutMs ?? 8000;
  const pinoWillSendConfig = Boolean(
    (workerData as { workerData?: { pinoWillSendConfig?: boolean } } | undefined)?.workerData
      ?.pinoWillSendConfig,
  );

  /**
   * parse (done by the stream) → redact → ECS → id → JSON. Never throws: a record always ships. Redacting the
   * record before the mapping scans only what the app logged: every value of the ECS document comes from it,
   * except the fields the mapping writes itself (timestamp, level, service, ids), which need no scan.
   */
  const serialize = (record: Record<string | symbol, unknown>, id: string): string => {
    let doc: Record<string, unknown>;
    try {
      if (record[UNPARSED] !== undefined) {
        unparsed++;
        doc = redact(unparsedLine(String(record[UNPARSED]), ecs));
      } else doc = toEcs(redact(record as Record<string, unknown>), pino, ecs);
    } catch (error) {
      unparsed++;
      doc = redact(unparsedLine(`pgsight/transport could not map a record: ${String(error)}`, ecs));
    }
    // event.id: the document's id everywhere (Elasticsearch _id, the Logstash dedup key, files).
    (doc.event as Record<string, unknown>).id = id;
    return JSON.stringify(doc);
  };

  const stream = await build(
    async (source) => {
      const src = source as unknown as Partial<PinoConfig>;
      if (src.levels && src.messageKey)
        pino = { levels: src.levels, messageKey: src.messageKey, errorKey: src.errorKey ?? 'err' };
      // A synchronous 'data' handler rather than `for await`: no promise per line.
      const lines = source as unknown as NodeJS.ReadableStream;
      // Backpressure: an output whose queue is full (Elasticsearch slower than the app logs) pauses reading
      // until it has room. Unread lines wait in pino's buffer on the app side; nothing is dropped.
      let paused = false;
      const resume = () => {
        paused = false;
        lines.resume();
      };
      await new Promise<void>((resolve) => {
        lines.on('data', (record: Record<string | symbol, unknown>) => {
          received++;
          const id = `${prefix}-${(seq++).toString(36)}`;
          const json = serialize(record, id);
          for (const output of outputs) {
            output.write(id, json);
            const room = paused ? undefined : output.waitForRoom?.();
            if (room) {
              paused = true;
              lines.pause();
              room.then(resume, resume);
            }
          }
        });
        lines.once('end', resolve);
        lines.once('close', resolve);
      });
    },
    {
      expectPinoConfig: pinoWillSendConfig && options.expectPinoConfig !== false,
      parseLine: (line: string) => {
        try {
          const value = JSON.parse(line);
          if (value !== null && typeof value === 'object') return value;
        } catch {
          // not JSON: kept below
        }
        return { [UNPARSED]: line };
      },
      async close() {
        if (status) clearInterval(status);
        await Promise.all(outputs.map((o) => o.close(closeTimeoutMs)));
        const total = totals(received, unparsed, outputs);
        const trouble = total.retried + total.spooled + total.deadLettered + total.dropped > 0;
        const mode = options.summary ?? 'always';
        if (mode === 'always' || (mode === 'on-trouble' && trouble)) writeStderr(summary(total, outputs));
      },
    },
  );
  // logger.flush(cb) on the app side: thread-stream waits until the worker has read the bytes, then calls the
  // destination's flush. Without one here, the callback would run while records are still on their way to
  // the outputs, and a process that exits in it (pgsight's SIGTERM handler does) would lose them.
  Object.assign(stream, {
    flush(done: (error?: Error) => void) {
      // setImmediate: lines already read are parsed and handed to the outputs before they are flushed.
      setImmediate(() => {
        Promise.all(outputs.map((o) => o.flush(closeTimeoutMs))).then(() => done(), done);
      });
    },
  });
  return stream;
}
