/**
 * A reserve in the worker's heap: one flat string of `mb` MiB, held for the worker's life.
 *
 * The one-pass path allocates almost nothing per line, so the worker's live heap is small (about 15 MB),
 * and V8 sets the old generation's limit from the live size. thread-stream's chunks, up to its 4 MiB buffer
 * each, are large objects allocated young; with the old generation's room below the young generation's
 * capacity, V8 starts a full, compacting collection (`--trace-gc`: "GC in old space requested") every 60-100
 * ms of steady logging, 3-12 ms each on the worker's thread plus concurrent marking on V8's threads. Live
 * bytes that never change raise the limit: with 32 MiB held, the collections of a 1M-line run fall from
 * about 30 to 1. A string is the cheapest such bytes: marking it is one step, whatever its length.
 */
let reserve: string | undefined;

export function reserveHeap(mb: number): void {
  if (mb <= 0 || reserve !== undefined) return;
  // `repeat` builds a rope; reading a character makes it one flat string.
  reserve = 'x'.repeat(mb * 1024 * 1024);
  reserve.charCodeAt(reserve.length - 1);
}
