/**
 * Where the one-pass path (transports/fast-document.ts) writes: reused buffers that grow, filled with bytes
 * of the line copied as they stand, pre-encoded pieces of the document's head, and the few strings a
 * document needs made (a timestamp, a value the redaction engine changed).
 */

/** A growable byte buffer, written from `length` on. */
export class ByteSink {
  buf: Buffer;
  length = 0;

  constructor(bytes = 16 * 1024) {
    this.buf = Buffer.allocUnsafeSlow(bytes);
  }

  /** Room for `n` more bytes. */
  room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafeSlow(Math.max(2 * this.buf.length, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  /** `src[from, to)`. Short runs by hand: a native copy's call costs more than a few dozen bytes do. */
  copy(src: Buffer, from: number, to: number): void {
    const n = to - from;
    this.room(n);
    const buf = this.buf;
    const at = this.length;
    if (n < 24) for (let i = 0; i < n; i++) buf[at + i] = src[from + i] as number;
    else src.copy(buf, at, from, to);
    this.length = at + n;
  }

  /** Pre-encoded bytes. */
  bytes(piece: Buffer): void {
    this.copy(piece, 0, piece.length);
  }

  /** A string, as UTF-8. */
  text(value: string): void {
    const n = value.length;
    this.room(3 * n);
    const buf = this.buf;
    const at = this.length;
    if (n < 64) {
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c >= 128) break;
        buf[at + i] = c;
      }
      if (i === n) {
        this.length = at + n;
        return;
      }
    }
    this.length = at + buf.write(value, at);
  }

  byte(c: number): void {
    this.room(1);
    this.buf[this.length++] = c;
  }
}

/** `text` has no lone surrogate: UTF-8 carries it as it is (String.prototype.isWellFormed, Node 20+). */
export const wellFormed = (text: string): boolean =>
  (text as unknown as { isWellFormed(): boolean }).isWellFormed();
