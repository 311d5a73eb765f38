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
import build from 'pino-abstract-transport';
import { processConfig } from '../src/config/env.js';
import { defaultPinoConfig, type PinoConfig, toEcs, unparsedLine } from './ecs.js';
import { DATA_STREAM, type TransportOptions, validateTransportOptions } from './options.js';
import type { ElasticsearchOutputOptions } from './outputs/elasticsearch/index.js';
import { emptyStats, type Output, type OutputStats, writeStderr } from './outputs/output.js';
import { createStreamOutput } from './outputs/stream.js';
import { createRedactor } from './redact/index.js';

export type { OutputOptions, TransportOptions } from './options.js';

const UNPARSED = Symbol('pgsight.unparsed');
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

/** A record's text for the record that replaces it, whatever it holds (cycles, BigInt). */
function safeText(record: Record<string | symbol, unknown>): string {
  try {
    const seen = new WeakSet<object>();
    return JSON.stringify(record, (_key, value: unknown) => {
      if (typeof value === 'bigint') return String(value);
      if (value !== null && typeof value === 'object') {
        if (seen.has(value)) return '[circular]';
        seen.add(value);
      }
      return value;
    });
  } catch {
    return '[a record that could not be read]';
  }
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
  let seq = 0;
  let received = 0;
  let unparsed = 0;
  let unmappable = 0;
  let pino: PinoConfig = defaultPinoConfig;

  const statusIntervalMs = options.statusIntervalMs ?? 60_000;
  let lastStatus = '';
  const status =
    statusIntervalMs > 0
      ? setInterval(() => {
          const line = summary(
            totals({ received, unparsed, unmappable, repaired: counters.repaired }, outputs),
            outputs,
          );
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
  const counters = { repaired: 0 };
  const ecs = { service, dataset, counters };
  const serialize = (record: Record<string | symbol, unknown>, id: string): string => {
    try {
      let doc: Record<string, unknown>;
      if (record[UNPARSED] !== undefined) {
        unparsed++;
        doc = redact(unparsedLine(String(record[UNPARSED]), ecs));
      } else doc = toEcs(redact(record as Record<string, unknown>), pino, ecs);
      // event.id: the document's id everywhere (Elasticsearch _id, the Logstash dedup key, files).
      (doc.event as Record<string, unknown>).id = id;
      return JSON.stringify(doc);
    } catch (error) {
      // No exception may end the stream: the record becomes one that says so, with its text, redacted.
      unmappable++;
      const doc = redact(unparsedLine(safeText(record), ecs));
      (doc.event as Record<string, unknown>).id = id;
      doc.error = { type: 'PgsightTransportError', message: `could not map a record: ${String(error)}` };
      return JSON.stringify(doc);
    }
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
            try {
              output.write(id, json);
            } catch {
              output.stats.dropped++;
            }
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
        const total = totals({ received, unparsed, unmappable, repaired: counters.repaired }, outputs);
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
