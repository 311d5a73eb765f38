import { writeSync } from 'node:fs';
import type { DocumentId } from '../document-id.js';
import type { ByteSink } from '../fast-output.js';
/** What every output of the transport implements. None of these methods throws or rejects. */
export interface Output {
  readonly name: string;
  /** Accept one redacted ECS document (`json`, no newline) with its stable id. */
  write(id: string, json: string): void;
  /**
   * The same, the document written in place as UTF-8 (Elasticsearch's output: into its `_bulk` body): the
   * sink to write the document of `id` into (about `expected` bytes), or undefined when the output takes a
   * string now (it spools). Each sink it gives is answered by `written`: whether a document was written.
   */
  sinkFor?(id: DocumentId, expected: number): ByteSink | undefined;
  written?(ok: boolean): void;
  /** Deliver what was accepted, or spool it, before the deadline. */
  flush(deadlineMs: number): Promise<void>;
  /** Flush, then release files and sockets. */
  close(deadlineMs: number): Promise<void>;
  /**
   * Backpressure: undefined while the output has room; otherwise a promise that settles once it has (or
   * once it stopped waiting and spooled instead). The transport stops reading lines until then.
   */
  waitForRoom?(): Promise<void> | undefined;
  readonly stats: OutputStats;
}

export interface OutputStats {
  /** Delivered (for Elasticsearch: stored, or found already stored by its id). */
  shipped: number;
  /** Re-sent after a retryable failure (429, 5xx, network). */
  retried: number;
  /** Written to the disk spool to wait for the destination. */
  spooled: number;
  /** Rejected for good by the destination (4xx other than 409/429) and written to the dead-letter file. */
  deadLettered: number;
  /** Lost: only when the spool's byte bound was hit (counted, never silent). */
  dropped: number;
  /**
   * Accepted by Elasticsearch into the stream's failure store (`failure_store: "used"`: a mapping conflict,
   * kept apart and not searchable in the stream), so not counted as shipped.
   */
  failureStored: number;
}

export const emptyStats = (): OutputStats => ({
  shipped: 0,
  retried: 0,
  spooled: 0,
  deadLettered: 0,
  dropped: 0,
  failureStored: 0,
});

/** Exponential backoff with full jitter: the transaction toolkit's, shared. */
export { backoffDelayMs as backoffMs } from '../../src/pg/backoff.js';

/** Straight to fd 2: a worker's process.stderr goes through the main thread, which may already be exiting. */
export function writeStderr(line: string): void {
  try {
    writeSync(2, line);
  } catch {
    // stderr closed: nothing else to tell
  }
}

export const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });
