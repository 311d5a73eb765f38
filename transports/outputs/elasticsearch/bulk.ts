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
import { type DocumentId, SAFE_ID } from '../../document-id.js';
import type { ByteSink } from '../../fast-output.js';
import type { SpoolEntry } from '../../spool.js';
import { backoffMs, type OutputStats, sleep } from '../output.js';
import { Batch, type ItemWriter } from './batches.js';
import type { ResolvedElasticsearchOptions } from './options.js';

const RETRYABLE = (status: number) => status === 429 || status >= 500;

type Item = { status?: number; error?: unknown; failure_store?: string };
type BulkResponse = { errors?: boolean; items?: Record<string, Item>[] };
const itemOf = (item: Record<string, Item>): Item | undefined => Object.values(item)[0];

const QUICK_FILTER = 'errors,items.*.failure_store';
const DETAILED_FILTER = 'errors,items.*.status,items.*.error,items.*.failure_store';
/** After a response with errors, how long batches ask for every item's status at once. */
const DETAILED_MS = 60_000;
const ACTION_CLOSE = Buffer.from('"}}\n');

export class BulkSender implements ItemWriter {
  private readonly actionHead: string;
  private readonly dataStreamFields: string;
  private readonly dataStreamLine: string;
  private readonly actionHeadBytes: Buffer;
  private readonly dataStreamLineBytes: Buffer;
  /** The bytes of an action line with a safe id, past the id's, and of the data stream's line. */
  private readonly safeActionBytes: number;
  private readonly dataStreamBytes: number;
  private detailedUntil = 0;

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
    this.dataStreamLine = `${this.dataStreamFields}\n`;
    this.actionHeadBytes = Buffer.from(this.actionHead);
    this.dataStreamLineBytes = Buffer.from(this.dataStreamLine);
    this.safeActionBytes = Buffer.byteLength(this.actionHead) + 5;
    this.dataStreamBytes = Buffer.byteLength(this.dataStreamLine);
  }

  maxItemBytes(id: string, json: string): number {
    // UTF-8 takes at most 3 bytes per UTF-16 unit; an escaped id at most 6 characters per character.
    return this.safeActionBytes + 6 * id.length + 3 + 3 * json.length + this.dataStreamBytes;
  }

  /** The item `body` joins as text (action line, document with `data_stream` in place of its closing brace),
   * encoded into `buf` at `at`. Action line and document go in one write, joined: `join` makes a flat string,
   * which Buffer.write encodes on its fast path, where the rope `+` makes (the document is one already) is
   * flattened by the write's slow path first (0.2-0.5 µs more for the transport benchmark's record). */
  writeItem(buf: Buffer, at: number, id: string, json: string): number {
    const action = SAFE_ID.test(id) ? `${this.actionHead}"${id}"}}\n` : `${this.action(id)}\n`;
    // Every document is a JSON object: its closing brace is replaced by the data stream's fields.
    const end = at + buf.write([action, json].join(''), at) - 1;
    return end + buf.write(this.dataStreamLine, end);
  }

  maxFrameBytes(id: DocumentId): number {
    return this.safeActionBytes + 6 * id.maxBytes + 3 + this.dataStreamBytes;
  }

  /**
   * writeItem's action line, for a document written in place after it: its fixed part encoded once, a
   * transport id (ASCII) written byte by byte.
   */
  writeAction(buf: Buffer, at: number, id: DocumentId): number {
    if (!id.safe) return at + buf.write(`${this.action(id.text)}\n`, at);
    let i = at + this.actionHeadBytes.copy(buf, at);
    buf[i++] = 34;
    i = id.write(buf, i);
    for (let j = 0; j < ACTION_CLOSE.length; j++) buf[i++] = ACTION_CLOSE[j] as number;
    return i;
  }

  /** Every document is a JSON object: its closing brace is replaced by the data stream's fields. */
  endItem(sink: ByteSink): void {
    sink.length--;
    sink.bytes(this.dataStreamLineBytes);
  }

  /** The documents and ids of a body writeItem wrote: no line of either holds a raw newline (JSON escapes it). */
  readItems(body: Buffer): SpoolEntry[] {
    const text = body.toString('utf8');
    const entries: SpoolEntry[] = [];
    for (let at = 0; at < text.length; ) {
      const nl = text.indexOf('\n', at);
      const end = text.indexOf('\n', nl + 1);
      const { create } = JSON.parse(text.slice(at, nl)) as { create: { _id: string } };
      entries.push({ id: create._id, json: `${text.slice(nl + 1, end - this.dataStreamFields.length)}}` });
      at = end + 1;
    }
    return entries;
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

  /**
   * The `_bulk` body of entries read back (a re-send of some items, the spool's replay), joined once: action
   * line, document with `data_stream` in place of its closing brace, newline. A live batch is written as
   * bytes in this same form as its documents arrive (writeItem). (The client's own NDJSON serializer would
   * concatenate the lines one by one, then measure and encode the result.)
   */
  body(entries: readonly SpoolEntry[]): string {
    const parts: string[] = new Array(entries.length * 3);
    let i = 0;
    for (const e of entries) {
      parts[i++] = SAFE_ID.test(e.id) ? `${this.actionHead}"${e.id}"}}\n` : `${this.action(e.id)}\n`;
      // Every document is a JSON object: its closing brace is replaced by the data stream's fields.
      parts[i++] = e.json.slice(0, -1);
      parts[i++] = this.dataStreamLine;
    }
    return parts.join('');
  }

  private async send(body: string | Buffer, filterPath: string): Promise<BulkResponse> {
    // A string or a Buffer passes through the client's serializer untouched (elastic-transport serializes only
    // objects and arrays).
    return (await this.client.bulk({
      operations: body as unknown as unknown[],
      filter_path: filterPath,
    })) as BulkResponse;
  }

  /**
   * One _bulk request; returns the entries to re-send. Rejects when the request itself failed.
   * The response is asked for without items (`filter_path=errors,items.*.failure_store`: Elasticsearch
   * leaves out the items the filter empties), so a batch that was stored whole costs no item parsing. When
   * it says anything but `errors: false`, the same body is sent again asking for each item's status: what was stored
   * answers 409 (same id), the rest answers what it is; and the next minute's batches ask for statuses
   * from the start, as a cluster that refused something is likely to again.
   */
  async bulk(batch: Batch | readonly SpoolEntry[]): Promise<SpoolEntry[]> {
    const written = batch instanceof Batch;
    const body = written ? batch.body : this.body(batch);
    if (Date.now() >= this.detailedUntil) {
      const quick = await this.send(body, QUICK_FILTER);
      // Only an answer that says `errors: false` vouches for every item; anything else asks for statuses.
      if (quick.errors === false) {
        const taken = (quick.items ?? []).filter((item) => itemOf(item)?.failure_store === 'used').length;
        this.stats.failureStored += taken;
        this.stats.shipped += (written ? batch.count : batch.length) - taken;
        return [];
      }
      this.detailedUntil = Date.now() + DETAILED_MS;
    }
    const entries = written ? batch.entries : batch;
    const response = await this.send(body, DETAILED_FILTER);
    const retry: SpoolEntry[] = [];
    const items = response.items ?? [];
    entries.forEach((entry, i) => {
      const item = items[i] ? itemOf(items[i]) : undefined;
      const status = item?.status ?? 500;
      if (item?.failure_store === 'used') this.stats.failureStored++;
      else if (status < 300 || status === 409) this.stats.shipped++;
      else if (RETRYABLE(status)) retry.push(entry);
      else this.deadLetter(entry, status, item?.error ?? 'no item in the response');
    });
    return retry;
  }

  /**
   * Send a batch (batches.ts) or entries read back until each is stored or dead-lettered; item-level retries
   * back off with full jitter.
   */
  async deliver(batch: Batch | SpoolEntry[]): Promise<void> {
    const { baseMs, maxMs } = this.options.retry;
    let pending = await this.bulk(batch);
    for (let attempt = 1; pending.length > 0; attempt++) {
      this.stats.retried += pending.length;
      await sleep(backoffMs(attempt, baseMs, maxMs));
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
