/**
 * Exponential backoff with full jitter, as AWS's architecture blog describes it
 * (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/): the transaction toolkit's retries,
 * two-phase commit's COMMIT PREPARED attempts and the transport's re-sends all wait this way.
 */
/** A uniform delay below the capped exponential `baseMs * 2^(attempt-1)`. */
export function backoffDelayMs(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * cap);
}
