/**
 * The in-memory queue: documents fill the open batch; a full one (flushBytes) is sealed into `ready`, and so
 * is the open one when its deadline passes (flushIntervalMs after its first document: a deadline, not a
 * debounce). Sending takes whole sealed batches: no per-document bookkeeping on the way out.
 *
 * A batch is its `_bulk` body, written as documents arrive: each document's action line and JSON are encoded
 * into the batch's Buffer at once (bulk.ts's `writeItem`), and nothing else is kept of it, not even its id.
 * Kept as strings (or as objects per document) until sent, documents outlived a scavenge or two and were
 * copied by it and promoted, then copied again to join the body and again to encode it; written at once,
 * they die young, and the body is sent as it stands. Documents and ids are read back from the body only
 * where they are needed one by one: a re-send of some items, the spool, the dead-letter file.
 */
import type { DocumentId } from '../../document-id.js';
import { ByteSink } from '../../fast-output.js';
import type { SpoolEntry } from '../../spool.js';

/** Encodes one `_bulk` item, and reads them back (bulk.ts). */
export interface ItemWriter {
  /** The most bytes the item of `id` and `json` can take. */
  maxItemBytes(id: string, json: string): number;
  /** Writes the item at `at`; returns where it ends. */
  writeItem(buf: Buffer, at: number, id: string, json: string): number;
  /** The most bytes the action line of `id` and the item's end take. */
  maxFrameBytes(id: DocumentId): number;
  /** Writes the action line of `id` at `at`; returns where it ends (where the document goes). */
  writeAction(buf: Buffer, at: number, id: DocumentId): number;
  /** Ends the item whose document `sink` ends with. */
  endItem(sink: ByteSink): void;
  /** The documents of a body of items, with their ids. */
  readItems(body: Buffer): SpoolEntry[];
}

/** Documents bound for one _bulk request: that request's body, nothing kept per document. */
export class Batch {
  private read: SpoolEntry[] | undefined;
  /** Its buffer went to a later batch (BatchQueue.recycle). */
  spent = false;

  constructor(
    readonly body: Buffer,
    readonly count: number,
    private readonly items: ItemWriter,
    /** The buffer `body` starts; `body` may end short of it. */
    readonly storage: Buffer = body,
  ) {}

  get bytes(): number {
    return this.body.length;
  }

  /** Each document on its own, read back from the body (a re-send of some items, the spool). */
  get entries(): SpoolEntry[] {
    if (this.spent && !this.read)
      throw new Error('pgsight: a delivered batch was read after its buffer was reused');
    this.read ??= this.items.readItems(this.body);
    return this.read;
  }
}

/** The first buffer of a batch when the last one was small; a batch's buffer doubles as it fills. */
const MIN_BUFFER_BYTES = 64 * 1024;
/**
 * Buffers of delivered batches kept for the next ones: a new buffer for each batch (about flushBytes) is
 * fresh memory the kernel zeroes page by page.
 */
const SPARE_BUFFERS = 2;

export class BatchQueue {
  /** The open batch: its buffer and the bytes written (the sink), the documents in it. */
  private readonly open = new ByteSink(MIN_BUFFER_BYTES);
  private count = 0;
  /** Where the item being written in place starts (`begin`). */
  private itemAt = 0;
  private ready: Batch[] = [];
  private spare: Buffer[] = [];
  private deadline: NodeJS.Timeout | undefined;
  /** Bytes waiting in memory, open and sealed batches together. */
  bytes = 0;

  constructor(
    private readonly flushBytes: number,
    private readonly flushIntervalMs: number,
    /** Called when the open batch's deadline passes. */
    private readonly onDeadline: () => void,
    private readonly items: ItemWriter,
  ) {}

  get queued(): boolean {
    return this.ready.length > 0 || this.count > 0;
  }

  get hasReady(): boolean {
    return this.ready.length > 0;
  }

  /** Add a document; true when that filled the open batch, which is then sealed. */
  add(id: string, json: string): boolean {
    const need = this.items.maxItemBytes(id, json);
    if (this.open.length + need > this.open.buf.length) this.grow(need);
    const at = this.open.length;
    this.open.length = this.items.writeItem(this.open.buf, at, id, json);
    return this.added(at);
  }

  /**
   * A document written in place, into the batch's buffer: its action line is written, and the sink the
   * document goes to returned (`expected`: about how many bytes it takes; the sink grows past that). Then
   * `end`.
   */
  begin(id: DocumentId, expected: number): ByteSink {
    const need = this.items.maxFrameBytes(id) + expected;
    if (this.open.length + need > this.open.buf.length) this.grow(need);
    this.itemAt = this.open.length;
    this.open.length = this.items.writeAction(this.open.buf, this.itemAt, id);
    return this.open;
  }

  /** The document `begin` was for was written (else nothing of it is kept); true as for `add`. */
  end(written: boolean): boolean {
    if (!written) {
      this.open.length = this.itemAt;
      return false;
    }
    this.items.endItem(this.open);
    return this.added(this.itemAt);
  }

  /** An item was written from `at` on. */
  private added(at: number): boolean {
    this.count++;
    this.bytes += this.open.length - at;
    if (this.open.length < this.flushBytes) return false;
    this.seal();
    return true;
  }

  /** Room for `need` more bytes: the batch copied into a buffer twice as large, or as large as needed. */
  private grow(need: number): void {
    // A batch ends below flushBytes plus one item: no buffer needs to be larger.
    const used = this.open.length;
    const size = Math.min(Math.max(2 * this.open.buf.length, used + need), this.flushBytes + need);
    const next = Buffer.allocUnsafeSlow(size);
    this.open.buf.copy(next, 0, 0, used);
    this.open.buf = next;
  }

  /** The open batch is complete (full, due, or flushed): its deadline goes with it. */
  seal(): void {
    if (this.count > 0) {
      const { buf, length } = this.open;
      this.ready.push(new Batch(buf.subarray(0, length), this.count, this.items, buf));
      // The next batch starts as large as this one ended: a steady stream fills it without growing.
      const size = Math.max(MIN_BUFFER_BYTES, Math.min(length, this.flushBytes) + MIN_BUFFER_BYTES);
      this.open.buf = this.bufferOf(size);
      this.open.length = 0;
      this.count = 0;
    }
    if (this.deadline) {
      clearTimeout(this.deadline);
      this.deadline = undefined;
    }
  }

  /** A spare buffer of at least `size` bytes, or a new one. */
  private bufferOf(size: number): Buffer {
    const i = this.spare.findIndex((b) => b.length >= size);
    if (i === -1) return Buffer.allocUnsafeSlow(size);
    return this.spare.splice(i, 1)[0] as Buffer;
  }

  /**
   * `batch` was delivered: its buffer serves a later batch. Only once nothing reads its body any more (the
   * request is answered, every re-send was read out of it); reading its entries afterwards throws.
   */
  recycle(batch: Batch): void {
    batch.spent = true;
    if (this.spare.length < SPARE_BUFFERS && batch.storage !== this.open.buf) this.spare.push(batch.storage);
  }

  /** The oldest sealed batch, out of the queue. */
  next(): Batch | undefined {
    const batch = this.ready.shift();
    if (batch) this.bytes -= batch.bytes;
    return batch;
  }

  /** Everything waiting in memory, oldest first, taken out of the queue (for the spool). */
  takeAll(): SpoolEntry[] {
    this.seal();
    const entries = this.ready.flatMap((b) => b.entries);
    this.ready = [];
    this.bytes = 0;
    return entries;
  }

  /** The open batch leaves at most flushIntervalMs after its first document. */
  arm(): void {
    if (!this.deadline && this.count > 0)
      this.deadline = setTimeout(() => {
        this.deadline = undefined;
        this.onDeadline();
      }, this.flushIntervalMs);
  }
}
