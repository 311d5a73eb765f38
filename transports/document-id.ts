/**
 * A document's id, as the one-pass path and Elasticsearch's output write it: as bytes, without its string
 * being made (a string joined per line, then read character by character, cost more than the rest of the
 * id's handling); the string is made when something asks for it (an output of strings, the spool).
 */

/** Ids whose characters need no escape in JSON (one byte each in UTF-8). */
export const SAFE_ID = /^[0-9a-z-]+$/;

export interface DocumentId {
  readonly text: string;
  /** The most bytes `write` writes. */
  readonly maxBytes: number;
  /** Its characters are [0-9a-z-]: written in JSON as they are. */
  readonly safe: boolean;
  /** Its UTF-8 into `buf` at `at`; where it ends. */
  write(buf: Buffer, at: number): number;
}

/** The id `text`. */
export function textId(text: string): DocumentId {
  return {
    text,
    maxBytes: 3 * text.length,
    safe: SAFE_ID.test(text),
    write: (buf, at) => at + buf.write(text, at),
  };
}

const BASE36 = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');

/** `<prefix>-<n in base 36>` for n = 0, 1, 2...: the transport's ids, one per record. */
export class SequenceIds implements DocumentId {
  readonly safe: boolean;
  readonly maxBytes: number;
  private readonly head: Buffer;
  private seq = -1;
  private readonly digits = Buffer.alloc(16);
  private from = 16;
  private made: string | undefined;

  constructor(private readonly prefix: string) {
    this.head = Buffer.from(`${prefix}-`);
    this.safe = SAFE_ID.test(prefix);
    this.maxBytes = this.head.length + 16;
  }

  /** The next id. */
  next(): this {
    let n = ++this.seq;
    let i = 16;
    do {
      this.digits[--i] = BASE36[n % 36] as number;
      n = Math.floor(n / 36);
    } while (n > 0);
    this.from = i;
    this.made = undefined;
    return this;
  }

  get text(): string {
    this.made ??= `${this.prefix}-${this.seq.toString(36)}`;
    return this.made;
  }

  write(buf: Buffer, at: number): number {
    const head = this.head;
    let i = at;
    for (let j = 0; j < head.length; j++) buf[i++] = head[j] as number;
    for (let j = this.from; j < 16; j++) buf[i++] = this.digits[j] as number;
    return i;
  }
}
