/**
 * JSON tokens of the line the one-pass path (transports/fast-document.ts) reads: where a string or number
 * ends, checked against JSON's grammar (a line that is no JSON takes the general path, which says so).
 * The line and what the last token was are module state, read by the path as live bindings.
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
const HEX4 = /^[0-9a-fA-F]{4}$/;
/** `" \\ / b f n r t` */
const SIMPLE_ESCAPES = [34, 92, 47, 98, 102, 110, 114, 116];
export const isDigit = (c: number) => c >= 48 && c <= 57;

/** The string the line is read in (the chunk it came in, most lines), and where the line ends in it. */
export let s = '';
export let lineEnd = 0;
/** The next backslash of the line at or after the string being read (-1: none). */
let backslash = -1;
/** The string just read had an escape. */
export let escaped = false;
/** The number just read is an integer written as JSON.stringify writes it, and exact in a double... */
export let plain = false;
/** ...whose value is this. */
export let integer = 0;

/**
 * A raw control character, a backslash or a surrogate: a line without any needs no other check. Searched
 * from the line's start (`lastIndex`); the newline after the line is one, so the search ends there.
 */
const UNUSUAL = /[\u0000-\u001f\\\ud800-\udfff]/g;
const CONTROL = /[\u0000-\u001f]/;

/**
 * Read the line `data.slice(start, end)` from now on; where it starts in `s`, or -1 when it holds a raw
 * control character (the line is no JSON) or a lone surrogate (JSON.stringify writes it escaped).
 *
 * Most lines are read where they stand in the chunk, a flat string: a slice of it would be read through an
 * indirection at every character, and cost an allocation. A line with a backslash or a surrogate is read
 * from a copy of its own, so that no search for the next backslash runs on into the rest of the chunk.
 */
export function begin(data: string, start: number, end: number): number {
  backslash = -1;
  UNUSUAL.lastIndex = start;
  const at = UNUSUAL.test(data) ? UNUSUAL.lastIndex - 1 : -1;
  if (at === -1 || at >= end) {
    s = data;
    lineEnd = end;
    return start;
  }
  const line = data.slice(start, end);
  s = line;
  lineEnd = line.length;
  if (CONTROL.test(line) || !(line as unknown as { isWellFormed(): boolean }).isWellFormed()) return -1;
  backslash = line.indexOf('\\');
  return 0;
}

/** Done with the line: the chunk is not held past it. */
export function finish(): void {
  s = '';
  lineEnd = 0;
}

/** Past the closing quote of the string opening at `at`; -1 when unterminated. Sets `escaped`. */
export function stringEnd(at: number): number {
  let q = s.indexOf('"', at + 1);
  // Past the line's end is the next line (a string the line leaves open).
  if (q === -1 || q >= lineEnd) return -1;
  escaped = backslash !== -1 && backslash < q;
  if (escaped) {
    // Escapes are checked here, not only where a value is decoded: a censored value is never decoded, and a
    // line with a bad escape is no JSON (the general path ships it as an unparsed line).
    q = at + 1;
    while (q < lineEnd) {
      const c = s.charCodeAt(q);
      if (c === QUOTE) break;
      if (c === BACKSLASH) {
        const e = s.charCodeAt(q + 1);
        if (e === 117) {
          if (!HEX4.test(s.slice(q + 2, q + 6))) return -1;
          q += 6;
        } else if (SIMPLE_ESCAPES.includes(e)) q += 2;
        else return -1;
      } else q++;
    }
    if (q >= lineEnd) return -1;
    backslash = s.indexOf('\\', q + 1);
  }
  return q + 1;
}

/** Past the number at `at` (JSON's grammar); -1 when it is none. Sets `plain` and `integer`. */
export function numberEnd(at: number): number {
  let i = at;
  const negative = s.charCodeAt(i) === MINUS;
  if (negative) i++;
  const first = s.charCodeAt(i);
  let n = first - ZERO;
  if (first === ZERO) i++;
  else if (first > ZERO && first <= 57)
    for (let c = s.charCodeAt(++i); isDigit(c); c = s.charCodeAt(++i)) n = n * 10 + c - ZERO;
  else return -1;
  // An integer of up to 15 digits is exact in a double; "-0" is written "0".
  plain = i - at <= 15 && !(first === ZERO && i - at > 1);
  integer = negative ? -n : n;
  let c = s.charCodeAt(i);
  if (c === 46) {
    plain = false;
    if (!isDigit(s.charCodeAt(++i))) return -1;
    while (isDigit(s.charCodeAt(++i)));
    c = s.charCodeAt(i);
  }
  if (c === 101 || c === 69) {
    plain = false;
    c = s.charCodeAt(++i);
    if (c === 43 || c === MINUS) i++;
    if (!isDigit(s.charCodeAt(i))) return -1;
    while (isDigit(s.charCodeAt(++i)));
  }
  return i;
}

export function literalEnd(at: number): number {
  const c = s.charCodeAt(at);
  if (c === 116) return s.startsWith('true', at) ? at + 4 : -1;
  if (c === 102) return s.startsWith('false', at) ? at + 5 : -1;
  if (c === 110) return s.startsWith('null', at) ? at + 4 : -1;
  return -1;
}
