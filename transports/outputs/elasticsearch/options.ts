/** The Elasticsearch output's options, and their defaults resolved once. */
import { join } from 'node:path';

export interface ElasticsearchOutputOptions {
  type: 'elasticsearch';
  /** @example 'http://127.0.0.1:9200' */
  node: string;
  /**
   * `logs-<dataset>-<namespace>`. Keep the `pgsight.` dataset prefix to get pgsight's index template and
   * dashboards (`npx pgsight setup`). @default 'logs-pgsight.<service name>-default'
   */
  dataStream?: string;
  auth?: { apiKey: string } | { username: string; password: string };
  /** Where undeliverable documents wait. @default '.pgsight-spool' */
  spoolDir?: string;
  /** Spool bound (bytes); beyond it new documents are dropped and counted. @default 268435456 (256 MiB) */
  maxSpoolBytes?: number;
  /** Dead-letter NDJSON file. @default '<spoolDir>/<dataStream>/dead-letter.ndjson' */
  deadLetterPath?: string;
  /** A batch is sent once it holds this many bytes. @default 1048576 (1 MiB) */
  flushBytes?: number;
  /** ...or this long after its first document arrived (ms). @default 1000 */
  flushIntervalMs?: number;
  /** Bulk requests in flight at once. @default 2 */
  concurrency?: number;
  /**
   * In-memory queue bound (bytes). Beyond it, while Elasticsearch answers, the transport stops reading lines
   * until the queue is half empty (backpressure: pino buffers them on the app side meanwhile); beyond twice
   * it, or while Elasticsearch does not answer, documents go to the disk spool. @default 16777216 (16 MiB)
   */
  maxQueueBytes?: number;
  /**
   * Longest the transport waits for room in the queue (ms). A cluster that stays this slow has the queue
   * spill to the disk spool instead, so that lines do not pile up in the app's memory (and an exit is not held up).
   * @default 2000
   */
  maxBackpressureMs?: number;
  /** Per-request timeout (ms). @default 30000 */
  requestTimeoutMs?: number;
  /** Backoff between retries (ms). @default { baseMs: 100, maxMs: 30000 } */
  retry?: { baseMs?: number; maxMs?: number };
}

export interface ResolvedElasticsearchOptions {
  node: string;
  auth: ElasticsearchOutputOptions['auth'];
  dataStream: string;
  /** `<spoolDir>/<dataStream>`: each stream spools apart. */
  spoolDir: string;
  maxSpoolBytes: number;
  deadLetterPath: string;
  flushBytes: number;
  flushIntervalMs: number;
  concurrency: number;
  maxQueueBytes: number;
  maxBackpressureMs: number;
  requestTimeoutMs: number;
  retry: { baseMs: number; maxMs: number };
}

export function resolveElasticsearchOptions(
  options: ElasticsearchOutputOptions,
  defaultDataStream: string,
): ResolvedElasticsearchOptions {
  const dataStream = options.dataStream ?? defaultDataStream;
  const spoolDir = join(options.spoolDir ?? '.pgsight-spool', dataStream);
  return {
    node: options.node,
    auth: options.auth,
    dataStream,
    spoolDir,
    maxSpoolBytes: options.maxSpoolBytes ?? 256 * 1024 * 1024,
    deadLetterPath: options.deadLetterPath ?? join(spoolDir, 'dead-letter.ndjson'),
    flushBytes: options.flushBytes ?? 1024 * 1024,
    flushIntervalMs: options.flushIntervalMs ?? 1000,
    concurrency: options.concurrency ?? 2,
    maxQueueBytes: options.maxQueueBytes ?? 16 * 1024 * 1024,
    maxBackpressureMs: options.maxBackpressureMs ?? 2000,
    requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
    retry: { baseMs: options.retry?.baseMs ?? 100, maxMs: options.retry?.maxMs ?? 30_000 },
  };
}
