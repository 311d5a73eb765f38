/**
 * Elasticsearch output: `create` actions into a data stream through the official client's bulk API.
 * Its parts: options.ts (defaults), batches.ts (the queue), backpressure.ts, bulk.ts (requests and item
 * statuses), spool-writer.ts and replay.ts (outages); this file wires them and owns close.
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
import { Client } from '@elastic/elasticsearch';
import { Spool, type SpoolEntry } from '../../spool.js';
import { emptyStats, type Output, sleep, writeStderr } from '../output.js';
import { Backpressure } from './backpressure.js';
import { type Batch, BatchQueue } from './batches.js';
import { BulkSender } from './bulk.js';
import { type ElasticsearchOutputOptions, resolveElasticsearchOptions } from './options.js';
import { replaySpool } from './replay.js';
import { SpoolWriter } from './spool-writer.js';

export type { ElasticsearchOutputOptions } from './options.js';

/** How long a close waits for the client to end its connections before it lets them go. */
const CLIENT_CLOSE_MS = 200;

export function createElasticsearchOutput(
  options: ElasticsearchOutputOptions,
  defaultDataStream: string,
): Output {
  const stats = emptyStats();
  const o = resolveElasticsearchOptions(options, defaultDataStream);
  const spool = new Spool(o.spoolDir, o.maxSpoolBytes);
  // A line torn by a kill mid-write was a record: lost, and counted.
  stats.dropped += spool.torn;
  const writer = new SpoolWriter(spool, stats);
  const client = new Client({
    node: o.node,
    ...(o.auth ? { auth: o.auth } : {}),
    // Retries are this output's: the client's own would re-send whole requests and then give up.
    maxRetries: 0,
    // What the client keeps of a failed request leaves out its headers and connection (where credentials
    // are) instead of copying it key by key with the secret keys replaced, the default: that copy walks the
    // request's body too, a Buffer index by index, and made the heap of a worker whose cluster was down
    // grow to 300 MB (elastic-transport's security.js, redactDiagnostic).
    redaction: { type: 'remove' },
    requestTimeout: o.requestTimeoutMs,
  });
  const sender = new BulkSender(client, o, stats);
  const queue = new BatchQueue(o.flushBytes, o.flushIntervalMs, () => send(true), sender);
  const backpressure = new Backpressure(o.maxQueueBytes, o.maxBackpressureMs);

  let inFlight = 0;
  const inFlightBatches = new Set<Batch>();
  const idle: (() => void)[] = [];
  let outage = !spool.empty; // documents left from a previous run are replayed before anything new
  let recovering: Promise<void> | undefined;
  /** Set when the close deadline passed: no more sending, what is left stays in the spool. */
  let stopped = false;
  let closing = false;
  let refusedSaid = false;

  const wakeReaders = () => backpressure.wake(queue.bytes, outage || stopped);
  const settle = () => {
    if (inFlight === 0 && !queue.queued && !recovering && (spool.empty || stopped))
      for (const resolve of idle.splice(0)) resolve();
  };

  function enterOutage(unsent: readonly SpoolEntry[]): void {
    writer.flush();
    outage = true;
    writer.write(unsent);
    writer.write(queue.takeAll());
    wakeReaders();
    recover();
  }

  function recover(): void {
    if (recovering || stopped) return;
    recovering = (async () => {
      await replaySpool({
        client,
        sender,
        spool,
        stats,
        options: o,
        beforeAttempt: () => writer.flush(),
        onRefused: (status, reason) => {
          if (refusedSaid) return;
          refusedSaid = true;
          writeStderr(
            `pgsight/transport: Elasticsearch at ${o.node} refused the transport (${status}: ${reason}); its key needs the index privileges create_doc and auto_configure on ${o.dataStream}. Documents wait in the spool and are re-sent.\n`,
          );
        },
        stopped: () => stopped,
      });
      outage = !spool.empty;
      recovering = undefined;
      if (outage && !stopped) recover();
      else if (!outage) send(true);
      settle();
    })();
  }

  /** Send sealed batches, `concurrency` at a time; `all` seals the open batch first (deadline, flush). */
  function send(all = false): void {
    if (all) queue.seal();
    while (queue.hasReady && inFlight < o.concurrency && !outage) {
      const batch = queue.next() as Batch;
      inFlight++;
      inFlightBatches.add(batch);
      sender
        .deliver(batch)
        .then(
          // Answered: nothing reads the body any more (re-sent items were read out of it).
          () => {
            inFlightBatches.delete(batch);
            queue.recycle(batch);
          },
          () => {
            if (inFlightBatches.has(batch)) enterOutage(batch.entries);
          },
        )
        .finally(() => {
          inFlightBatches.delete(batch);
          inFlight--;
          send(closing);
          queue.arm();
          wakeReaders();
          settle();
        });
    }
  }

  if (outage) recover();

  // Past twice the bound the queue spills to disk: backpressure pauses reading, but lines already read must
  // go somewhere, and memory stays bounded.
  const spilling = () =>
    outage ||
    !spool.empty ||
    queue.bytes > 2 * o.maxQueueBytes ||
    (backpressure.spilling && queue.bytes > o.maxQueueBytes);
  const spill = (id: string, json: string) => {
    writer.later(id, json);
    if (!outage) {
      outage = true;
      recover();
    }
  };

  return {
    name: `elasticsearch ${o.dataStream}`,
    stats,
    write(id, json) {
      if (spilling()) spill(id, json);
      else if (queue.add(id, json)) send();
      else queue.arm();
    },
    sinkFor(id, expected) {
      return spilling() ? undefined : queue.begin(id, expected);
    },
    written(ok) {
      if (queue.end(ok)) send();
      else if (ok) queue.arm();
    },
    waitForRoom() {
      return backpressure.wait(queue.bytes, !outage && !stopped && !closing);
    },
    async flush(deadlineMs) {
      writer.flush();
      send(true);
      const done = new Promise<void>((resolve) => {
        idle.push(resolve);
        settle();
      });
      const timedOut = await Promise.race([done.then(() => false), sleep(deadlineMs).then(() => true)]);
      if (timedOut && closing) {
        stopped = true;
        writeStderr(
          `pgsight/transport: Elasticsearch at ${o.node} did not store the last documents within ${deadlineMs} ms of the exit (unreachable, refusing or not answering); they wait in the spool for the next start\n`,
        );
        // Not delivered in time: keep it on disk for the next start. Batches still in flight are spooled too;
        // if they land after all, their replay finds them stored (409 on the same id), so nothing doubles.
        writer.flush();
        for (const batch of inFlightBatches) writer.write(batch.entries);
        inFlightBatches.clear();
        writer.write(queue.takeAll());
      }
    },
    async close(deadlineMs) {
      closing = true;
      await this.flush(deadlineMs);
      stopped = true;
      wakeReaders();
      // The client's close waits for requests in flight (up to requestTimeoutMs against a cluster that does
      // not answer); what they carry is in the spool already, so the close does not wait past a moment.
      await Promise.race([client.close().catch(() => {}), sleep(CLIENT_CLOSE_MS)]);
    },
  };
}
