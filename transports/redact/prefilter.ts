import { DIGIT_RULE_ID, type Rule } from './rules.js';

/**
 * The redaction engine's prefilter (index.ts): which rules can match a string at all, found in one pass over its characters. Keywords are
 * indexed by their first two characters (lower-cased ASCII): at each position a table look-up says whether
 * any keyword starts there, and only then is it compared. The same pass counts digits: the card rule needs no
 * keyword, only 13 digits in one run of digits, spaces and dashes. A common string runs no rule. (One
 * alternation regex over every keyword, or an `includes` per keyword, costs several times more on the short strings most records hold.)
 */
export class Prefilter {
  private readonly singles = new Int16Array(128);
  private readonly pairs = new Int16Array(128 * 128);
  private readonly buckets: { keyword: string; rules: number[] }[][] = [];
  private readonly digitRule: number;

  constructor(rules: readonly Rule[]) {
    const owners = new Map<string, number[]>();
    rules.forEach((rule, i) => {
      for (const keyword of rule.keywords) owners.set(keyword, [...(owners.get(keyword) ?? []), i]);
    });
    for (const [keyword, ruleIds] of owners) {
      const a = keyword.charCodeAt(0);
      const table = keyword.length === 1 ? this.singles : this.pairs;
      const slot = keyword.length === 1 ? a : (a << 7) | keyword.charCodeAt(1);
      if (table[slot] === 0) {
        this.buckets.push([]);
        table[slot] = this.buckets.length;
      }
      (this.buckets[(table[slot] as number) - 1] as { keyword: string; rules: number[] }[]).push({
        keyword,
        rules: ruleIds,
      });
    }
    this.digitRule = rules.findIndex((r) => r.id === DIGIT_RULE_ID);
  }

  /**
   * Marks in `selected` the rules that can match `s.slice(start, end)`; false when none can. A range, so that
   * the transport's one-pass path can ask about a string inside a serialized line without cutting it out.
   */
  select(s: string, selected: Uint8Array, start = 0, end = s.length): boolean {
    let any = false;
    // Digits in the current run of digits, spaces and dashes (how card numbers are written), and the most seen.
    let digits = 0;
    let mostDigits = 0;
    let c = lowerAscii(s.charCodeAt(start));
    for (let i = start; i < end; i++) {
      const d = i + 1 < end ? lowerAscii(s.charCodeAt(i + 1)) : 0;
      if (c < 128) {
        if (c >= 48 && c <= 57) {
          if (++digits > mostDigits) mostDigits = digits;
        } else if (c !== 32 && c !== 45) digits = 0;
        const single = this.singles[c] as number;
        if (single !== 0) any = this.mark(single, s, i, end, selected) || any;
        if (d < 128) {
          const pair = this.pairs[(c << 7) | d] as number;
          if (pair !== 0) any = this.mark(pair, s, i, end, selected) || any;
        }
      }
      c = d;
    }
    if (mostDigits >= 13) {
      selected[this.digitRule] = 1;
      any = true;
    }
    return any;
  }

  /**
   * `select` over the UTF-8 bytes of a string: what it marks for the string (keywords are ASCII; a
   * character beyond ASCII is bytes of 0x80 and above, each passed over as `select` passes over the
   * character). A copy of `select`'s loop over bytes rather than one loop over either: the loop is the
   * prefilter's whole cost, and reading through a choice at every character would slow `text()` too.
   */
  selectBytes(b: Uint8Array, selected: Uint8Array, start: number, end: number): boolean {
    let any = false;
    let digits = 0;
    let mostDigits = 0;
    let c = lowerAscii(b[start] as number);
    for (let i = start; i < end; i++) {
      const d = i + 1 < end ? lowerAscii(b[i + 1] as number) : 0;
      if (c < 128) {
        if (c >= 48 && c <= 57) {
          if (++digits > mostDigits) mostDigits = digits;
        } else if (c !== 32 && c !== 45) digits = 0;
        const single = this.singles[c] as number;
        if (single !== 0) any = this.mark(single, b, i, end, selected) || any;
        if (d < 128) {
          const pair = this.pairs[(c << 7) | d] as number;
          if (pair !== 0) any = this.mark(pair, b, i, end, selected) || any;
        }
      }
      c = d;
    }
    if (mostDigits >= 13) {
      selected[this.digitRule] = 1;
      any = true;
    }
    return any;
  }

  private mark(
    bucket: number,
    s: string | Uint8Array,
    at: number,
    end: number,
    selected: Uint8Array,
  ): boolean {
    let any = false;
    for (const { keyword, rules } of this.buckets[bucket - 1] as { keyword: string; rules: number[] }[]) {
      if (!(typeof s === 'string' ? startsWithFolded(s, keyword, at, end) : bytesFolded(s, keyword, at, end)))
        continue;
      for (const i of rules) selected[i] = 1;
      any = true;
    }
    return any;
  }
}

const lowerAscii = (c: number) => (c >= 65 && c <= 90 ? c + 32 : c);

/** `s` has `keyword` (lower case) at `at`, before `end`, in any case. */
function startsWithFolded(s: string, keyword: string, at: number, end: number): boolean {
  if (at + keyword.length > end) return false;
  for (let j = 2; j < keyword.length; j++)
    if (lowerAscii(s.charCodeAt(at + j)) !== keyword.charCodeAt(j)) return false;
  return true;
}

/** `b` has the bytes of `keyword` (lower-case ASCII) at `at`, before `end`, in any case. */
function bytesFolded(b: Uint8Array, keyword: string, at: number, end: number): boolean {
  if (at + keyword.length > end) return false;
  for (let j = 2; j < keyword.length; j++)
    if (lowerAscii(b[at + j] as number) !== keyword.charCodeAt(j)) return false;
  return true;
}
