/**
 * JSON tokens of the line the one-pass path (transports/fast-document.ts) reads, as UTF-8 bytes: where a
 * string or number ends, checked against JSON's grammar (a line that is no JSON takes the general path,
 * which says so). The line and what the last token was are module state, read by the path as live bindings.
 *
 * Bytes, not the string thread-stream hands over: the document is written as bytes (into the `_bulk` body),
 * so a value that stays as it stands is copied byte for byte, and no string is made of it. A UTF-8 sequence
 * is bytes of 0x80 and above, none of which is a token's; a string's bytes are checked for what matters
 * (its quote, escapes, raw control characters) in the one loop that finds its end.
 */
export const QUOTE = 34;
export const BACKSLASH = 92;
export const COMMA = 44;
export const COLON = 58;
export const LBRACE = 123;
export const RBRACE = 125;
export const LBRACKET = 91;
export const RBRACKET = 93;
export const MINUS = 45;
const ZERO = 48;
export const isDigit = (c: number) => c >= 48 && c <= 57;
const isHex = (c: number) => (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);

/** The bytes the line is read in (a chunk of many lines, most often), and where the line ends in them. */
export let b: Buffer = Buffer.alloc(0);
export let lineEnd = 0;
/** The string just read had an escape. */
export let escaped = false;
/** The number just read is an integer written as JSON.stringify writes it, and exact in a double... */
export let plain = false;
/** ...whose value is this. */
export let integer = 0;

/** Read the line `src[start, end)` from now on. */
export function begin(src: Buffer, end: number): void {
  b = src;
  lineEnd = end;
}

const EMPTY = Buffer.alloc(0);
/** Done with the line: its bytes are not held past it. */
export function finish(): void {
  b = EMPTY;
  lineEnd = 0;
}

/**
 * Past the closing quote of the string opening at `at`; -1 when it is unterminated within the line, holds a
 * raw control character, or a bad escape (the line is no JSON). Sets `escaped`.
 */
export function stringEnd(at: number): number {
  escaped = false;
  for (let q = at + 1; q < lineEnd; q++) {
    const c = b[q] as number;
    if (c === QUOTE) return q + 1;
    if (c < 32) return -1;
    if (c === BACKSLASH) {
      // Escapes are checked here, not only where a value is decoded: a censored value is never decoded.
      escaped = true;
      const e = b[++q] as number;
      if (e === 117) {
        if (!(isHex(b[q + 1] as number) && isHex(b[q + 2] as number) && isHex(b[q + 3] as number))) return -1;
        if (!isHex(b[q + 4] as number)) return -1;
        q += 4;
      } else if (
        e !== QUOTE &&
        e !== BACKSLASH &&
        e !== 47 &&
        e !== 98 &&
        e !== 102 &&
        e !== 110 &&
        e !== 114 &&
        e !== 116
      )
        return -1;
    }
  }
  return -1;
}

/** Past the number at `at` (JSON's grammar); -1 when it is none. Sets `plain` and `integer`. */
export function numberEnd(at: number): number {
  let i = at;
  const negative = b[i] === MINUS;
  if (negative) i++;
  const first = b[i] as number;
  let n = first - ZERO;
  if (first === ZERO) i++;
  else if (first > ZERO && first <= 57)
    for (let c = b[++i] as number; isDigit(c); c = b[++i] as number) n = n * 10 + c - ZERO;
  else return -1;
  // An integer of up to 15 digits is exact in a double; "-0" is written "0".
  plain = i - at <= 15 && !(first === ZERO && i - at > 1);
  integer = negative ? -n : n;
  let c = b[i] as number;
  if (c === 46) {
    plain = false;
    if (!isDigit(b[++i] as number)) return -1;
    while (isDigit(b[++i] as number));
    c = b[i] as number;
  }
  if (c === 101 || c === 69) {
    plain = false;
    c = b[++i] as number;
    if (c === 43 || c === MINUS) i++;
    if (!isDigit(b[i] as number)) return -1;
    while (isDigit(b[++i] as number));
  }
  return i > lineEnd ? -1 : i;
}

/** Past `true`, `false` or `null` at `at`; -1 when it is none. */
export function literalEnd(at: number): number {
  const c = b[at];
  if (c === 116) return b[at + 1] === 114 && b[at + 2] === 117 && b[at + 3] === 101 ? at + 4 : -1;
  if (c === 110) return b[at + 1] === 117 && b[at + 2] === 108 && b[at + 3] === 108 ? at + 4 : -1;
  if (c === 102)
    return b[at + 1] === 97 && b[at + 2] === 108 && b[at + 3] === 115 && b[at + 4] === 101 ? at + 5 : -1;
  return -1;
}

/** The text of `b[start, end)`. */
export const textOf = (start: number, end: number): string => b.toString('utf8', start, end);
