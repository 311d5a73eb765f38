/**
 * The one-pass path's memory of top-level values (fast-document.ts): lines from one call site repeat most
 * of their values (pino writes a child logger's bindings as the same bytes on every line; a host name, a
 * level, a message template), and many of the rest differ only in their integers (ids, counts, durations).
 *
 * A top-level value the walk left as it stood is remembered with its key (its bytes, up to MEMO_BYTES, and
 * where its short integers stand). A later value of that key is the same as far as the walk is concerned
 * when its bytes repeat the remembered ones, except that each remembered integer may be any other integer
 * of under 13 characters written as JSON.stringify writes it (the walk leaves every such number as it is:
 * no card number is that short), and it is followed by `,` or `}`. The walk's decisions on a value depend
 * only on its key, its depth and its bytes (the redaction engine's decisions are functions of these), so
 * such a value is left as it stood again, and is not read.
 *
 * Bytes that match up to a remembered integer put the two values' tokens in step: a JSON value's bytes say
 * where each of its tokens ends.
 */

import { type KeyEntry, UNCACHED } from './fast-keys.js';
import { isDigit } from './fast-tokens.js';

/** Values up to this long are remembered, with up to MEMO_SPANS integers. */
const MEMO_BYTES = 256;
export const MEMO_SPANS = 16;

/**
 * Where the value of `entry` at `at` in `b` ends when it is its remembered one (as above), else -1.
 */
export function recall(entry: KeyEntry, b: Buffer, at: number): number {
  const n = entry.memoLength;
  const memo = entry.memo;
  if (n <= 0 || memo === undefined) return -1;
  let i = 0;
  let j = at;
  const spans = entry.memoSpans as Int32Array;
  for (let k = 0; k < entry.memoSpanCount; k++) {
    for (const start = spans[2 * k] as number; i < start; i++, j++) if (memo[i] !== b[j]) return -1;
    // An integer of under 13 characters, as JSON.stringify writes it.
    const from = j;
    if (b[j] === 45) j++;
    const first = b[j] as number;
    if (first === 48) j++;
    else if (first > 48 && first <= 57) while (isDigit(b[++j] as number));
    else return -1;
    const c = b[j];
    if (j - from >= 13 || (first === 48 && j - from > 1) || c === 46 || c === 101 || c === 69) return -1;
    i = spans[2 * k + 1] as number;
  }
  for (; i < n; i++, j++) if (memo[i] !== b[j]) return -1;
  const next = b[j];
  if (next !== 44 && next !== 125) return -1;
  entry.memoMisses = 0;
  return j;
}

/**
 * `b[at, end)` is the top-level value of `entry` the walk left as it stood, holding `keys` keys, with its
 * short integers at `spans` (absolute pairs; `count` of them, MEMO_SPANS + 1: too many to remember): it is
 * remembered, with what the path read of it (`kind`, `number`).
 */
export function remember(
  entry: KeyEntry,
  b: Buffer,
  at: number,
  end: number,
  keys: number,
  spans: Int32Array,
  count: number,
  kind: number,
  number: number,
): void {
  const n = end - at;
  if (n > MEMO_BYTES || count > MEMO_SPANS || (entry.info & UNCACHED) !== 0) {
    entry.memoLength = -1;
    return;
  }
  // A value that keeps changing (beyond its integers) is remembered again only now and then: copying it out
  // costs more than comparing it does.
  if (entry.memoLength > 0 && ++entry.memoMisses > 2 && (entry.memoMisses & 63) !== 0) return;
  entry.memo ??= Buffer.allocUnsafe(MEMO_BYTES);
  entry.memoSpans ??= new Int32Array(2 * MEMO_SPANS);
  b.copy(entry.memo, 0, at, end);
  for (let k = 0; k < 2 * count; k++) entry.memoSpans[k] = (spans[k] as number) - at;
  entry.memoSpanCount = count;
  entry.memoLength = n;
  entry.memoKeys = keys;
  entry.memoKind = kind;
  entry.memoNumber = number;
}
