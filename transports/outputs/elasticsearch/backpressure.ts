/**
 * Backpressure: past `maxQueueBytes`, while Elasticsearch answers, the transport stops reading lines until
 * the queue is half empty (pino buffers them on the app side meanwhile). Waiting is bounded by
 * `maxBackpressureMs`: a cluster that stays that slow has the overflow spilled to the disk spool instead, so
 * that lines do not pile up in the app's memory and an exit is not held up.
 */
export class Backpressure {
  private waiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Set when waiting for room took longer than maxBackpressureMs: the overflow goes to disk instead. */
  spilling = false;

  constructor(
    private readonly maxQueueBytes: number,
    private readonly maxBackpressureMs: number,
  ) {}

  /** A promise for a reader to wait on, or undefined when there is room (or waiting would not help). */
  wait(queueBytes: number, mayWait: boolean): Promise<void> | undefined {
    if (!mayWait || this.spilling || queueBytes <= this.maxQueueBytes) return undefined;
    this.timer ??= setTimeout(() => {
      this.spilling = true;
      this.release();
    }, this.maxBackpressureMs).unref();
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Let readers go when the queue is below half its bound, or `force` (an outage, a stop). */
  wake(queueBytes: number, force: boolean): void {
    if (queueBytes <= this.maxQueueBytes / 2) this.spilling = false;
    if (this.waiters.length === 0) return;
    if (queueBytes > this.maxQueueBytes / 2 && !force) return;
    this.release();
  }

  /** Let every waiting reader go. */
  release(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}
