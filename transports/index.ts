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
import { isMainThread, workerData } from 'node:worker_threads';
import { processConfig } from '../src/config/env.js';
import { createDocuments } from './document.js';
import { SequenceIds } from './document-id.js';
import { defaultPinoConfig, type PinoConfig } from './ecs.js';
import { ByteSink } from './fast-output.js';
import { reserveHeap } from './heap-reserve.js';
import { LineReader, pinoConfig } from './line-reader.js';
import { DATA_STREAM, type TransportOptions, validateTransportOptions } from './options.js';
import type { ElasticsearchOutputOptions } from './outputs/elasticsearch/index.js';
import { emptyStats, type Output, type OutputStats, writeStderr } from './outputs/output.js';
import { createStreamOutput } from './outputs/stream.js';
import { createRedactor } from './redact/index.js';

export type { OutputOptions, TransportOptions } from './options.js';

/** Marks the stand-in transport of refused options: it reads and counts, and ships nothing. */
const REFUSED = Symbol('pgsight.refused');

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

export interface TransportStats extends OutputStats {
  received: number;
  unparsed: number;
  /** Records the mapping failed on, shipped as a record that says so. */
  unmappable: number;
  /** Records shipped with a repaired field (a timestamp no date could be made of). */
  repaired: number;
}

/**
 * The status line: what the transport read, then each output's own counts (a sum over outputs would read
 * wrong: 3 shipped to stdout is not 3 shipped to Elasticsearch).
 */
function summary(stats: TransportStats, outputs: Output[]): string {
  const extra = `${stats.unmappable ? ` unmappable=${stats.unmappable}` : ''}${stats.repaired ? ` repaired=${stats.repaired}` : ''}`;
  const per = outputs
    .map((o) => {
      const s = o.stats;
      const stored = s.failureStored ? ` failure_stored=${s.failureStored}` : '';
      return `${o.name}: shipped=${s.shipped} retried=${s.retried} spooled=${s.spooled} dead_lettered=${s.deadLettered} dropped=${s.dropped}${stored}`;
    })
    .join('; ');
  return `pgsight/transport: received=${stats.received} unparsed=${stats.unparsed}${extra}; ${per}\n`;
}

function totals(
  counts: Pick<TransportStats, 'received' | 'unparsed' | 'unmappable' | 'repaired'>,
  outputs: Output[],
): TransportStats {
  const total: TransportStats = { ...emptyStats(), ...counts };
  for (const o of outputs) {
    total.shipped += o.stats.shipped;
    total.retried += o.stats.retried;
    total.spooled += o.stats.spooled;
    total.deadLettered += o.stats.deadLettered;
    total.dropped += o.stats.dropped;
    total.failureStored += o.stats.failureStored;
  }
  return total;
}

/** An output that could not start: every document it is handed is counted as dropped. */
function failedOutput(name: string): Output {
  const stats = emptyStats();
  return {
    name,
    stats,
    write() {
      stats.dropped++;
    },
    flush: async () => {},
    close: async () => {},
  };
}

export default async function pgsightTransport(options: TransportOptions = {}) {
  const refused = (options as { [REFUSED]?: boolean })[REFUSED] === true;
  try {
    if (!refused) validateTransportOptions(options);
  } catch (error) {
    // Called by pino in its worker, a throw would be an 'error' event on the app's stream: an unhandled one
    // ends the app. The problems are said once; nothing is shipped, and every record is counted as dropped.
    if (isMainThread) throw error;
    writeStderr(`${(error as Error).message}; nothing is shipped until they are fixed\n`);
    return pgsightTransport({
      outputs: [],
      statusIntervalMs: 0,
      summary: 'always',
      [REFUSED]: true,
    } as TransportOptions);
  }
  // In pino's worker only: on the app's thread the heap is the app's.
  if (!isMainThread) reserveHeap(options.heapReserveMb ?? 32);
  const config = processConfig();
  const service = {
    name: options.service?.name ?? config.service.name,
    version: options.service?.version ?? config.service.version,
    environment: options.service?.environment ?? config.service.environment,
  };
  const outputOptions = options.outputs ?? [{ type: 'stdout' as const }];
  const es = outputOptions.find((o): o is ElasticsearchOutputOptions => o.type === 'elasticsearch');
  const dataset = es?.dataStream
    ? (DATA_STREAM.exec(es.dataStream)?.[1] as string)
    : `${DATASET_PREFIX}${datasetOf(service.name)}`;
  const redact = createRedactor(options.redact);
  // Output modules are loaded only when configured: the worker of a stdout-only logger starts without the
  // Elasticsearch client or pino-pretty (pgsight's own logger starts its worker at its first record).
  const outputs: Output[] = await Promise.all(
    (refused ? [] : outputOptions).map(async (o, i): Promise<Output> => {
      try {
        if (o.type === 'elasticsearch')
          return (await import('./outputs/elasticsearch/index.js')).createElasticsearchOutput(
            o,
            `logs-${dataset}-default`,
          );
        if (o.type === 'logstash') return (await import('./outputs/logstash.js')).createLogstashOutput(o);
        if (o.type === 'pretty') return (await import('./outputs/pretty.js')).createPrettyOutput(o);
        return createStreamOutput(o);
      } catch (error) {
        // An output that cannot start (an uncreatable spool directory, a file path that is a directory) is
        // reported once; the other outputs run on, and what this one would have written is counted as dropped.
        writeStderr(
          `pgsight/transport: outputs[${i}] (${o.type}) cannot start and is left off: ${(error as Error).message}\n`,
        );
        return failedOutput(`${o.type} (not started)`);
      }
    }),
  );

  if (refused) outputs.push(failedOutput('refused options'));

  // Ids: this transport instance's random prefix and a sequence. Stable across retries and spool replays of
  // one record; two identical records get two ids.
  const prefix = `${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;
  let received = 0;
  let pino: PinoConfig = defaultPinoConfig;

  const closeTimeoutMs = options.closeTimeoutMs ?? 8000;
  const pinoWillSendConfig = Boolean(
    (workerData as { workerData?: { pinoWillSendConfig?: boolean } } | undefined)?.workerData
      ?.pinoWillSendConfig,
  );

  const counters = { repaired: 0 };
  const ecs = { service, dataset, counters };
  if (pinoWillSendConfig && options.expectPinoConfig !== false) {
    const config = await pinoConfig();
    if (config.levels && config.messageKey)
      pino = { levels: config.levels, messageKey: config.messageKey, errorKey: config.errorKey ?? 'err' };
  }
  const documents = createDocuments(redact, pino, ecs);

  // Started once the counters it reads exist (pino's configuration is awaited above).
  const statusIntervalMs = options.statusIntervalMs ?? 60_000;
  let lastStatus = '';
  const status =
    statusIntervalMs > 0
      ? setInterval(() => {
          const line = summary(
            totals({ received, ...documents.counts, repaired: counters.repaired }, outputs),
            outputs,
          );
          if (line !== lastStatus) writeStderr(line);
          lastStatus = line;
        }, statusIntervalMs).unref()
      : undefined;

  // Backpressure: an output whose queue is full (Elasticsearch slower than the app logs) stops reading until
  // it has room; the next line asks again, so a second full output is waited for in its turn. Unread lines
  // wait in pino's buffer on the app side; nothing is dropped.
  const room = (): Promise<unknown> | undefined => {
    for (const output of outputs) {
      const wait = output.waitForRoom?.();
      if (wait) return wait;
    }
    return undefined;
  };

  const ids = new SequenceIds(prefix);
  const ship = (id: string, json: string) => {
    for (const output of outputs) {
      try {
        output.write(id, json);
      } catch {
        output.stats.dropped++;
      }
    }
  };
  // The one-pass path writes a document as bytes: in place, into the output's own buffer, for an output that
  // takes bytes (Elasticsearch's `_bulk` body); for the others, into `document`, and decoded once.
  const document = new ByteSink();
  const stream = new LineReader({
    line(src, start, end) {
      received++;
      const id = ids.next();
      // What the one-pass path writes for a line, at most, but for replacements longer than what they replace.
      const expected = 3 * (end - start) + 2048;
      let fast = true;
      let json: string | undefined;
      for (const output of outputs) {
        try {
          if (fast && output.sinkFor) {
            const sink = output.sinkFor(id, expected);
            if (sink !== undefined) {
              const ok = documents.fastBytes(src, start, end, id, sink);
              output.written?.(ok);
              if (ok) continue;
              fast = false;
            }
          }
          if (json === undefined) {
            document.length = 0;
            json =
              fast && documents.fastBytes(src, start, end, id, document)
                ? document.buf.toString('utf8', 0, document.length)
                : documents.general(src.toString('utf8', start, end), id.text);
          }
          output.write(id.text, json);
        } catch {
          output.stats.dropped++;
        }
      }
    },
    text(line) {
      received++;
      const id = ids.next().text;
      ship(id, documents.of(line, id));
    },
    room,
    async close() {
      if (status) clearInterval(status);
      await Promise.all(outputs.map((o) => o.close(closeTimeoutMs)));
      const total = totals({ received, ...documents.counts, repaired: counters.repaired }, outputs);
      const trouble =
        total.retried +
          total.spooled +
          total.deadLettered +
          total.dropped +
          total.unmappable +
          total.repaired >
        0;
      const mode = options.summary ?? 'on-trouble';
      if (mode === 'always' || (mode === 'on-trouble' && trouble)) writeStderr(summary(total, outputs));
    },
  });
  // logger.flush(cb) on the app side: thread-stream waits until the worker has read the bytes, then calls the
  // destination's flush. Without one here, the callback would run while records are still on their way to
  // the outputs, and a process that exits in it (pgsight's SIGTERM handler does) would lose them.
  Object.assign(stream, {
    flush(done: (error?: Error) => void) {
      // setImmediate: a chunk taken meanwhile is handed to the outputs before they are flushed.
      setImmediate(() => {
        Promise.all(outputs.map((o) => o.flush(closeTimeoutMs))).then(() => done(), done);
      });
    },
  });
  return stream;
}
