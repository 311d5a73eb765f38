/**
 * The in-memory queue: documents fill the open batch; a full one (flushBytes) is sealed into `ready`, and so
 * is the open one when its deadline passes (flushIntervalMs after its first document: a deadline, not a
 * debounce). Sending takes whole sealed batches: no per-document bookkeeping on the way out.
 */
import type { SpoolEntry } from '../../spool.js';

export interface Entry extends SpoolEntry {
  bytes: number;
}

/** Documents bound for one _bulk request. */
export interface Batch {
  entries: Entry[];
  bytes: number;
}
const newBatch = (): Batch => ({ entries: [], bytes: 0 });

/** Per-document overhead counted against the queue bound: the action line and the newlines. */
const ENTRY_OVERHEAD_BYTES = 64;

export class BatchQueue {
  private open = newBatch();
  private ready: Batch[] = [];
  private deadline: NodeJS.Timeout | undefined;
  /** Bytes waiting in memory, open and sealed batches together. */
  bytes = 0;

  constructor(
    private readonly flushBytes: number,
    private readonly flushIntervalMs: number,
    /** Called when the open batch's deadline passes. */
    private readonly onDeadline: () => void,
  ) {}

  get queued(): boolean {
    return this.ready.length > 0 || this.open.entries.length > 0;
  }

  get hasReady(): boolean {
    return this.ready.length > 0;
  }

  /** Add a document; true when that filled the open batch, which is then sealed. */
  add(id: string, json: string): boolean {
    const bytes = json.length + ENTRY_OVERHEAD_BYTES;
    this.open.entries.push({ id, json, bytes });
    this.open.bytes += bytes;
    this.bytes += bytes;
    if (this.open.bytes < this.flushBytes) return false;
    this.seal();
    return true;
  }

  /** The open batch is complete (full, due, or flushed): its deadline goes with it. */
  seal(): void {
    if (this.open.entries.length === 0) return;
    this.ready.push(this.open);
    this.open = newBatch();
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
    if (!this.deadline && this.open.entries.length > 0)
      this.deadline = setTimeout(() => {
        this.deadline = undefined;
        this.onDeadline();
      }, this.flushIntervalMs);
  }
}
