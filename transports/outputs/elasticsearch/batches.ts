/**
 * The in-memory queue: documents fill the open batch; a full one (flushBytes) is sealed into `ready`, and so
 * is the open one when its deadline passes (flushIntervalMs after its first document: a deadline, not a
 * debounce). Sending takes whole sealed batches: no per-document bookkeeping on the way out.
 *
 * A batch is its `_bulk` body, written as documents arrive: each document's action line and JSON are encoded
 * into the batch's Buffer at once (bulk.ts's `writeItem`), and the document's string is not kept. Kept as
 * strings until sent, every document outlived a scavenge or two and was copied by it, then copied again to join
 * the body and again to encode it; written at once, it dies young, and the body is sent as it stands. A
 * document's JSON is read back from the Buffer only where one is needed on its own: a re-send of some items,
 * the spool, the dead-letter file.
 */
import type { SpoolEntry } from '../../spool.js';

/** Encodes one `_bulk` item (bulk.ts). */
export interface ItemWriter {
  /** The most bytes the item of `id` and `json` can take. */
  maxItemBytes(id: string, json: string): number;
  /** Writes the item at `at`; returns where it ends, and in `doc` where its document's bytes are (up to its
   * closing brace). */
  writeItem(buf: Buffer, at: number, id: string, json: string, doc: { start: number; end: number }): number;
}

/** The buffer a batch is written into: replaced by a larger one as the batch grows. */
interface Body {
  buf: Buffer;
}

/** A document in a batch: its JSON is decoded from the batch's body when asked for. */
export class Entry implements SpoolEntry {
  constructor(
    readonly id: string,
    private readonly body: Body,
    private readonly start: number,
    private readonly end: number,
  ) {}

  get json(): string {
    // The body holds the document up to its closing brace, which the data stream's fields replace.
    return `${this.body.buf.toString('utf8', this.start, this.end)}}`;
  }
}

/** Documents bound for one _bulk request, and that request's body. */
export interface Batch {
  entries: Entry[];
  bytes: number;
  body: Buffer;
}

/** The first buffer of a batch when the last one was small; a batch's buffer doubles as it fills. */
const MIN_BUFFER_BYTES = 64 * 1024;

export class BatchQueue {
  private entries: Entry[] = [];
  private body: Body = { buf: Buffer.allocUnsafeSlow(MIN_BUFFER_BYTES) };
  private used = 0;
  private ready: Batch[] = [];
  private deadline: NodeJS.Timeout | undefined;
  /** Bytes waiting in memory, open and sealed batches together. */
  bytes = 0;
  /** Where writeItem says the document is. */
  private readonly doc = { start: 0, end: 0 };

  constructor(
    private readonly flushBytes: number,
    private readonly flushIntervalMs: number,
    /** Called when the open batch's deadline passes. */
    private readonly onDeadline: () => void,
    private readonly items: ItemWriter,
  ) {}

  get queued(): boolean {
    return this.ready.length > 0 || this.entries.length > 0;
  }

  get hasReady(): boolean {
    return this.ready.length > 0;
  }

  /** Add a document; true when that filled the open batch, which is then sealed. */
  add(id: string, json: string): boolean {
    const need = this.items.maxItemBytes(id, json);
    if (this.used + need > this.body.buf.length) this.grow(need);
    const end = this.items.writeItem(this.body.buf, this.used, id, json, this.doc);
    this.entries.push(new Entry(id, this.body, this.doc.start, this.doc.end));
    this.bytes += end - this.used;
    this.used = end;
    if (this.used < this.flushBytes) return false;
    this.seal();
    return true;
  }

  /** Room for `need` more bytes: the batch copied into a buffer twice as large, or as large as needed. */
  private grow(need: number): void {
    const old = this.body.buf;
    // A batch ends below flushBytes plus one item: no buffer needs to be larger.
    const next = Buffer.allocUnsafeSlow(
      Math.min(Math.max(2 * old.length, this.used + need), this.flushBytes + need),
    );
    old.copy(next, 0, 0, this.used);
    this.body.buf = next;
  }

  /** The open batch is complete (full, due, or flushed): its deadline goes with it. */
  seal(): void {
    if (this.entries.length > 0) {
      this.ready.push({
        entries: this.entries,
        bytes: this.used,
        body: this.body.buf.subarray(0, this.used),
      });
      // The next batch starts as large as this one ended: a steady stream fills it without growing.
      const size = Math.max(MIN_BUFFER_BYTES, Math.min(this.used, this.flushBytes) + MIN_BUFFER_BYTES);
      this.body = { buf: Buffer.allocUnsafeSlow(size) };
      this.entries = [];
      this.used = 0;
    }
    if (this.deadline) {
      clearTimeout(this.deadline);
      this.deadline = undefined;
    }
  }

  /** The oldest sealed batch, out of the queue. */
  next(): Batch | undefined {
    const batch = this.ready.shift();
    if (batch) this.bytes -= batch.bytes;
    return batch;
  }

  /** Everything waiting in memory, oldest first, taken out of the queue (for the spool). */
  takeAll(): Entry[] {
    this.seal();
    const entries = this.ready.flatMap((b) => b.entries);
    this.ready = [];
    this.bytes = 0;
    return entries;
  }

  /** The open batch leaves at most flushIntervalMs after its first document. */
  arm(): void {
    if (!this.deadline && this.entries.length > 0)
      this.deadline = setTimeout(() => {
        this.deadline = undefined;
        this.onDeadline();
      }, this.flushIntervalMs);
  }
}
