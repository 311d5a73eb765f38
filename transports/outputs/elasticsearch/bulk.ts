/**
 * `_bulk` requests through the official client: `create` actions into the data stream, each item's status
 * read back (https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html):
 *   2xx stored · 409 stored before (same id) · 429/5xx re-sent after backoff · other 4xx dead-lettered;
 *   2xx with `failure_store: "used"` taken by the stream's failure store, counted apart.
 * A request that fails as a whole (down, 429/5xx, timeout) rejects: the caller treats it as an outage.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Client } from '@elastic/elasticsearch';
import type { SpoolEntry } from '../../spool.js';
import { backoffMs, type OutputStats, sleep } from '../output.js';
import type { ResolvedElasticsearchOptions } from './options.js';

const RETRYABLE = (status: number) => status === 429 || status >= 500;

type Item = { status: number; error?: unknown; failure_store?: string };

export class BulkSender {
  private readonly actionHead: string;
  private readonly dataStreamFields: string;

  constructor(
    private readonly client: Client,
    private readonly options: ResolvedElasticsearchOptions,
    private readonly stats: OutputStats,
  ) {
    // Ids are the transport's own (`<base36><hex>-<base36>`), with nothing to escape; one read back from a
    // spool file written by something else is escaped properly.
    this.actionHead = `{"create":{"_index":${JSON.stringify(options.dataStream)},"_id":`;
    // `data_stream.*` on every document, as Elastic's own shippers write them: data views and the Logs UI
    // filter on them, and the template maps them as constant_keyword. Appended when a batch is sent (queued
    // and spooled documents wait without them).
    const [, dataset, namespace] = /^logs-(.+)-([^-]+)$/.exec(options.dataStream) ?? [];
    this.dataStreamFields = `,"data_stream":${JSON.stringify({ type: 'logs', dataset, namespace })}}`;
  }

  private action(id: string): string {
    return /["\\\u0000-\u001f]/.test(id)
      ? `${this.actionHead}${JSON.stringify(id)}}}`
      : `${this.actionHead}"${id}"}}`;
  }

  /** The mapping never writes `data_stream` (an app's own is moved under `pino.*`): it is always added here. */
  withDataStream(json: string): string {
    return json.slice(0, -1) + this.dataStreamFields;
  }

  /** One _bulk request; returns the entries to re-send. Rejects when the request itself failed. */
  async bulk(entries: readonly SpoolEntry[]): Promise<SpoolEntry[]> {
    const operations: string[] = [];
    for (const e of entries) operations.push(this.action(e.id), this.withDataStream(e.json));
    const response = (await this.client.bulk({
      operations,
      filter_path: 'errors,items.*.status,items.*.error,items.*.failure_store',
    })) as { items?: Record<string, Item>[] };
    const retry: SpoolEntry[] = [];
    const items = response.items ?? [];
    entries.forEach((entry, i) => {
      const item = items[i] ? (Object.values(items[i] as object)[0] as Item) : undefined;
      const status = item?.status ?? 500;
      if (item?.failure_store === 'used') this.stats.failureStored++;
      else if (status < 300 || status === 409) this.stats.shipped++;
      else if (RETRYABLE(status)) retry.push(entry);
      else this.deadLetter(entry, status, item?.error ?? 'no item in the response');
    });
    return retry;
  }

  /** Send entries until each is stored or dead-lettered; item-level retries back off with full jitter. */
  async deliver(entries: SpoolEntry[]): Promise<void> {
    const { baseMs, maxMs } = this.options.retry;
    let pending = entries;
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > 1) {
        this.stats.retried += pending.length;
        await sleep(backoffMs(attempt - 1, baseMs, maxMs));
      }
      pending = await this.bulk(pending);
    }
  }

  /** A document the cluster refused for good: kept in the dead-letter file with the reason. */
  private deadLetter(entry: SpoolEntry, status: number, error: unknown): void {
    this.stats.deadLettered++;
    const path = this.options.deadLetterPath;
    try {
      mkdirSync(dirname(path), { recursive: true });
      appendFileSync(
        path,
        `${JSON.stringify({ '@timestamp': new Date().toISOString(), id: entry.id, status, reason: error, index: this.options.dataStream }).slice(0, -1)},"document":${this.withDataStream(entry.json)}}\n`,
      );
    } catch {
      this.stats.dropped++;
    }
  }
}
