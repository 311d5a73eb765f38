/**
 * Elasticsearch output: `create` actions into a data stream through the official client's bulk API.
 *
 *   write ─▶ queue (bounded bytes) ─▶ batch (flushBytes, or flushIntervalMs after its first line: a deadline,
 *            │                        not a debounce) ─▶ _bulk, at most `concurrency` in flight
 *            │                                             ├ item 2xx: stored · 409: stored before (same id)
 *            │                                             ├ item 429/5xx: re-sent after backoff with full jitter
 *            │                                             └ item other 4xx: dead-letter file, with the reason
 *            └─ request failed (down, 429/5xx, timeout) ─▶ outage: batch + queue to the disk spool; probe with
 *               backoff; when it answers, replay the spool in order, then go back to live batching
 *
 * Every document carries an id fixed when the record entered the transport, so retries and replays (after a
 * restart too) can never store it twice, while two identical records logged twice get two ids.
 * Why not the client's bulk helper: it drops a batch when a request fails and aborts for good when the
 * cluster is down (elastic/elasticsearch-js helpers.ts); this output must retry and spool instead.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Client } from '@elastic/elasticsearch';
import { Spool, type SpoolEntry } from '../spool.js';
import { backoffMs, emptyStats, type Output, sleep } from './output.js';

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

interface Entry extends SpoolEntry {
  bytes: number;
}

/** Documents bound for one _bulk request. */
interface Batch {
  entries: Entry[];
  bytes: number;
}
const newBatch = (): Batch => ({ entries: [], bytes: 0 });

const RETRYABLE = (status: number) => status === 429 || status >= 500;

export function createElasticsearchOutput(
  options: ElasticsearchOutputOptions,
  defaultDataStream: string,
): Output {
  const stats = emptyStats();
  const dataStream = options.dataStream ?? defaultDataStream;
  const spoolDir = join(options.spoolDir ?? '.pgsight-spool', dataStream);
  const spool = new Spool(spoolDir, options.maxSpoolBytes ?? 256 * 1024 * 1024);
  const deadLetterPath = options.deadLetterPath ?? join(spoolDir, 'dead-letter.ndjson');
  const flushBytes = options.flushBytes ?? 1024 * 1024;
  const flushIntervalMs = options.flushIntervalMs ?? 1000;
  const concurrency = options.concurrency ?? 2;
  const maxQueueBytes = options.maxQueueBytes ?? 16 * 1024 * 1024;
  const maxBackpressureMs = options.maxBackpressureMs ?? 2000;
  const baseMs = options.retry?.baseMs ?? 100;
  const maxMs = options.retry?.maxMs ?? 30_000;
  const client = new Client({
    node: options.node,
    ...(options.auth ? { auth: options.auth } : {}),
    // Retries are this output's: the client's own would re-send whole requests and then give up.
    maxRetries: 0,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
  });
  // `data_stream.*` on every document, as Elastic's own shippers write them: data views and the Logs UI filter
  // on them, and the template maps them as constant_keyword. Appended when a batch is sent (queued and
  // spooled documents wait without them), unless the record has its own.
  const [, streamDataset, streamNamespace] = /^logs-(.+)-([^-]+)$/.exec(dataStream) ?? [];
  const dataStreamFields = `,"data_stream":${JSON.stringify({ type: 'logs', dataset: streamDataset, namespace: streamNamespace })}}`;
  const withDataStream = (json: string) =>
    json.includes('"data_stream":') ? json : json.slice(0, -1) + dataStreamFields;
  // Ids are the transport's own (`<base36><hex>-<base36>`), with nothing to escape; one read back from a
  // spool file written by something else is escaped properly.
  const actionHead = `{"create":{"_index":${JSON.stringify(dataStream)},"_id":`;
  const action = (id: string) =>
    /["\\\u0000-\u001f]/.test(id) ? `${actionHead}${JSON.stringify(id)}}}` : `${actionHead}"${id}"}}`;

  // Documents fill the open batch; a full one (flushBytes) is sealed into `ready`, and so is the open one when
  // its deadline passes. Sending takes whole sealed batches: no per-document bookkeeping on the way out.
  let open = newBatch();
  let ready: Batch[] = [];
  let queueBytes = 0;
  let deadline: NodeJS.Timeout | undefined;

  let inFlight = 0;
  const inFlightBatches = new Set<Entry[]>();
  const idle: (() => void)[] = [];
  let outage = !spool.empty; // documents left from a previous run are replayed before anything new
  let recovering: Promise<void> | undefined;
  /** Set when the close deadline passed: no more sending, what is left stays in the spool. */
  let stopped = false;
  let closing = false;

  stats.spooled = 0;

  const queued = () => ready.length > 0 || open.entries.length > 0;
  /** Readers waiting for the queue to go below half its bound (backpressure). */
  let roomWaiters: (() => void)[] = [];
  let backpressureTimer: NodeJS.Timeout | undefined;
  /** Set when waiting for room took longer than maxBackpressureMs: the overflow goes to disk instead. */
  let spilling = false;
  const releaseReaders = () => {
    if (backpressureTimer) clearTimeout(backpressureTimer);
    backpressureTimer = undefined;
    const waiters = roomWaiters;
    roomWaiters = [];
    for (const resolve of waiters) resolve();
  };
  const wakeReaders = () => {
    if (queueBytes <= maxQueueBytes / 2) spilling = false;
    if (roomWaiters.length === 0) return;
    if (queueBytes > maxQueueBytes / 2 && !outage && !stopped) return;
    releaseReaders();
  };
  /** Everything waiting in memory, oldest first, taken out of the queue (for the spool). */
  const takeQueue = (): Entry[] => {
    seal();
    const entries = ready.flatMap((b) => b.entries);
    ready = [];
    queueBytes = 0;
    return entries;
  };
  /** The open batch is complete (full, due, or flushed): its deadline goes with it. */
  const seal = () => {
    if (open.entries.length === 0) return;
    ready.push(open);
    open = newBatch();
    if (deadline) {
      clearTimeout(deadline);
      deadline = undefined;
    }
  };

  const settle = () => {
    if (inFlight === 0 && !queued() && !recovering && (spool.empty || stopped))
      for (const resolve of idle.splice(0)) resolve();
  };

  function deadLetter(entry: Entry | SpoolEntry, status: number, error: unknown): void {
    stats.deadLettered++;
    try {
      mkdirSync(dirname(deadLetterPath), { recursive: true });
      appendFileSync(
        deadLetterPath,
        `${JSON.stringify({ '@timestamp': new Date().toISOString(), id: entry.id, status, reason: error, index: dataStream }).slice(0, -1)},"document":${withDataStream(entry.json)}}\n`,
      );
    } catch {
      stats.dropped++;
    }
  }

  /** One _bulk request; returns the entries to re-send. Rejects when the request itself failed (an outage). */
  async function bulk(entries: readonly (Entry | SpoolEntry)[]): Promise<(Entry | SpoolEntry)[]> {
    const operations: string[] = [];
    for (const e of entries) operations.push(action(e.id), withDataStream(e.json));
    const response = (await client.bulk({
      operations,
      filter_path: 'errors,items.*.status,items.*.error',
    })) as { items?: Record<string, { status: number; error?: unknown }>[] };
    const retry: (Entry | SpoolEntry)[] = [];
    const items = response.items ?? [];
    entries.forEach((entry, i) => {
      const item = items[i]
        ? (Object.values(items[i] as object)[0] as { status: number; error?: unknown })
        : undefined;
      const status = item?.status ?? 500;
      if (status < 300 || status === 409) stats.shipped++;
      else if (RETRYABLE(status)) retry.push(entry);
      else deadLetter(entry, status, item?.error ?? 'no item in the response');
    });
    return retry;
  }

  /** Send entries until each is stored or dead-lettered; item-level retries back off with full jitter. */
  async function deliver(entries: (Entry | SpoolEntry)[]): Promise<void> {
    let pending = entries;
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > 1) {
        stats.retried += pending.length;
        await sleep(backoffMs(attempt - 1, baseMs, maxMs));
      }
      pending = await bulk(pending);
    }
  }

  function toSpool(entries: readonly SpoolEntry[]): void {
    if (entries.length === 0) return;
    try {
      const dropped = spool.append(entries);
      stats.dropped += dropped;
      stats.spooled += entries.length - dropped;
    } catch {
      stats.dropped += entries.length;
    }
  }

  // During an outage lines reach the spool in small groups (at most SPOOL_GROUP_MS later): one write per
  // group rather than one per line keeps a burst against a dead cluster cheap.
  let spoolGroup: SpoolEntry[] = [];
  let spoolGroupBytes = 0;
  let spoolTimer: NodeJS.Timeout | undefined;
  const SPOOL_GROUP_MS = 50;
  // Under V8's large-object size (128 KiB): a group's text dies in the young generation.
  const SPOOL_GROUP_BYTES = 64 * 1024;
  function flushSpoolGroup(): void {
    if (spoolTimer) clearTimeout(spoolTimer);
    spoolTimer = undefined;
    const group = spoolGroup;
    spoolGroup = [];
    spoolGroupBytes = 0;
    toSpool(group);
  }
  function spoolLater(id: string, json: string): void {
    spoolGroup.push({ id, json });
    spoolGroupBytes += json.length;
    if (spoolGroupBytes >= SPOOL_GROUP_BYTES) flushSpoolGroup();
    else spoolTimer ??= setTimeout(flushSpoolGroup, SPOOL_GROUP_MS);
  }

  function enterOutage(unsent: readonly SpoolEntry[]): void {
    flushSpoolGroup();
    outage = true;
    toSpool(unsent);
    toSpool(takeQueue());
    wakeReaders();
    recover();
  }

  /** Probe with backoff until Elasticsearch answers, then replay the spool oldest first. */
  function recover(): void {
    if (recovering || stopped) return;
    recovering = (async () => {
      // A cluster that is down is probed with a ping, not by reading the spool; the segment being replayed
      // stays parsed across failed attempts, with how far it got, and a retry resumes there.
      let segment: ReturnType<Spool['oldest']>;
      let cursor = 0;
      for (let attempt = 1; !stopped; attempt++) {
        flushSpoolGroup();
        try {
          if (!(await client.ping())) throw new Error('ping failed');
          segment ??= spool.oldest();
          if (!segment) break;
          // Replay in order, a bounded batch at a time.
          while (cursor < segment.entries.length) {
            const batch: SpoolEntry[] = [];
            let bytes = 0;
            for (let i = cursor; i < segment.entries.length && bytes < flushBytes; i++) {
              const entry = segment.entries[i] as SpoolEntry;
              batch.push(entry);
              bytes += entry.json.length;
            }
            await deliver(batch);
            cursor += batch.length;
          }
          spool.release(segment.seq);
          segment = undefined;
          cursor = 0;
          attempt = 0;
        } catch {
          stats.retried++;
          await sleep(backoffMs(attempt, baseMs, maxMs));
        }
      }
      outage = !spool.empty;
      recovering = undefined;
      if (outage && !stopped) recover();
      else if (!outage) send(true);
      settle();
    })();
  }

  /** Send sealed batches, `concurrency` at a time; `all` seals the open batch first (deadline, flush). */
  function send(all = false): void {
    if (all) seal();
    while (ready.length > 0 && inFlight < concurrency && !outage) {
      const { entries: batch, bytes } = ready.shift() as Batch;
      queueBytes -= bytes;
      inFlight++;
      inFlightBatches.add(batch);
      deliver(batch)
        .catch(() => {
          if (inFlightBatches.has(batch)) enterOutage(batch);
        })
        .finally(() => {
          inFlightBatches.delete(batch);
          inFlight--;
          send(closing);
          arm();
          wakeReaders();
          settle();
        });
    }
  }

  /** The open batch leaves at most flushIntervalMs after its first document. */
  function arm(): void {
    if (!deadline && open.entries.length > 0)
      deadline = setTimeout(() => {
        deadline = undefined;
        send(true);
      }, flushIntervalMs);
  }

  if (outage) recover();

  return {
    name: `elasticsearch ${dataStream}`,
    stats,
    write(id, redacted) {
      // `data_stream.*` is added when the document is sent: a spooled document waits without it.
      const json = redacted;
      // Past twice the bound the queue spills to disk: backpressure pauses reading, but lines already read
      // must go somewhere, and memory stays bounded.
      if (
        outage ||
        !spool.empty ||
        queueBytes > 2 * maxQueueBytes ||
        (spilling && queueBytes > maxQueueBytes)
      ) {
        spoolLater(id, json);
        if (!outage) {
          outage = true;
          recover();
        }
        return;
      }
      const bytes = json.length + 64;
      open.entries.push({ id, json, bytes });
      open.bytes += bytes;
      queueBytes += bytes;
      if (open.bytes >= flushBytes) {
        seal();
        send();
      } else arm();
    },
    waitForRoom() {
      if (outage || stopped || closing || spilling || queueBytes <= maxQueueBytes) return undefined;
      backpressureTimer ??= setTimeout(() => {
        spilling = true;
        releaseReaders();
      }, maxBackpressureMs).unref();
      return new Promise<void>((resolve) => roomWaiters.push(resolve));
    },
    async flush(deadlineMs) {
      flushSpoolGroup();
      send(true);
      const done = new Promise<void>((resolve) => {
        idle.push(resolve);
        settle();
      });
      const timedOut = await Promise.race([done.then(() => false), sleep(deadlineMs).then(() => true)]);
      if (timedOut && closing) {
        stopped = true;
        // Not delivered in time: keep it on disk for the next start. Batches still in flight are spooled too;
        // if they land after all, their replay finds them stored (409 on the same id), so nothing doubles.
        flushSpoolGroup();
        for (const batch of inFlightBatches) toSpool(batch);
        inFlightBatches.clear();
        toSpool(takeQueue());
      }
    },
    async close(deadlineMs) {
      closing = true;
      await this.flush(deadlineMs);
      stopped = true;
      wakeReaders();
      await client.close().catch(() => {});
    },
  };
}
