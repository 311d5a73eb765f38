/**
 * The transport's end of thread-stream: the stream pino's worker writes the app's lines to.
 *
 *   app thread: pino ──(SharedArrayBuffer)──▶ thread-stream's worker loop: UTF-8 → string ──▶ LineReader
 *                                                                  'drain' ◀── a chunk taken ──┘
 *
 * thread-stream hands over strings holding many lines. pino-abstract-transport would pass each through
 * split2, a Transform whose writable side turns the string back into a Buffer and decodes it again, and whose
 * readable side emits a line at a time; here a chunk is cut at its newlines in place. The rest of that
 * module's contract is kept: `\r\n` ends a line as `\n` does, an unterminated last line is read at the end,
 * pino's configuration (levels, message and error keys) is awaited when pino says it sends it, and the close
 * hook runs before 'close', which is what lets thread-stream end the worker.
 *
 * A chunk is everything pino wrote since the worker last read: up to the whole 4 MiB buffer when the app
 * logs faster than the outputs take lines. V8 allocates a string that size as a large object, and
 * thread-stream's loop holds it while the chunk is read; each scavenge in that time moved it to the old
 * generation, where only a full collection frees it, so the worker's heap grew by a chunk per scavenge
 * (to 150-230 MB in a 1M-line burst). A long chunk is therefore copied into pieces of regular size first,
 * and read once that loop has returned: the chunk dies young and the pieces die one by one as they are read.
 */
import { Writable } from 'node:stream';
import { parentPort } from 'node:worker_threads';
import type { PinoConfig } from './ecs.js';

export interface LineReaderHooks {
  /** One line, `data.slice(start, end)` (its line ending left out): read in place, not cut out. */
  line(data: string, start: number, end: number): void;
  /** After each line: a promise while an output has no room (reading stops until it settles). */
  room(): Promise<unknown> | undefined;
  /** When the stream ends or is destroyed; 'close' waits for it. */
  close(): Promise<void>;
}

/** Chunks longer than this are read from copies in pieces about this long (under V8's 128 KiB large-object size). */
const PIECE_CHARS = 32 * 1024;

export class LineReader extends Writable {
  /** An unterminated last line, waiting for the rest of it in the next chunk. */
  private partial = '';
  /** The chunk (or piece) being read, and where its next line starts. */
  private data = '';
  private from = 0;
  /** A long chunk's pieces still to read, from `piece` on. */
  private pieces: string[] = [];
  private piece = 0;

  constructor(private readonly hooks: LineReaderHooks) {
    // highWaterMark 1: every chunk answers "wait for 'drain'" until it is taken, so an output without room
    // holds thread-stream (and so pino's buffer on the app side) rather than lines piling up here.
    super({ decodeStrings: false, highWaterMark: 1, autoDestroy: true });
  }

  override _write(chunk: string | Buffer, _encoding: string, done: (error?: Error | null) => void): void {
    const data = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    this.from = 0;
    if (this.partial.length > 0) {
      // The line the last chunk ended in: completed on its own, so that the chunk (megabytes) is never copied
      // to be joined to it.
      const nl = data.indexOf('\n');
      if (nl === -1) {
        this.partial += data;
        done();
        return;
      }
      this.emitLine(this.partial + data.slice(0, nl), 0, this.partial.length + nl);
      this.partial = '';
      this.from = nl + 1;
    }
    if (data.length - this.from > PIECE_CHARS) {
      this.pieces = copiesInPieces(data, this.from);
      this.piece = 0;
      this.data = '';
      this.from = 0;
      // Once thread-stream's loop has returned, nothing holds the chunk.
      queueMicrotask(() => {
        if (!this.waitForRoom(done)) this.read(done);
      });
      return;
    }
    this.data = data;
    if (this.from === 0 || !this.waitForRoom(done)) this.read(done);
  }

  /** When an output has no room: reading resumes once it has, and true. */
  private waitForRoom(done: (error?: Error | null) => void): boolean {
    const wait = this.hooks.room();
    if (!wait) return false;
    const go = () => this.read(done);
    wait.then(go, go);
    return true;
  }

  /** Lines of the chunk from `from` on; an output without room stops it after the line that filled it. */
  private read(done: (error?: Error | null) => void): void {
    for (;;) {
      const data = this.data;
      let from = this.from;
      for (let nl = data.indexOf('\n', from); nl !== -1; nl = data.indexOf('\n', from)) {
        this.emitLine(data, from, nl);
        from = nl + 1;
        this.from = from;
        if (this.waitForRoom(done)) return;
      }
      // Every piece but the last ends with its newline.
      if (this.piece < this.pieces.length) {
        this.data = this.pieces[this.piece] as string;
        this.pieces[this.piece++] = '';
        this.from = 0;
        continue;
      }
      this.pieces = [];
      this.partial = from < data.length ? data.slice(from) : '';
      this.data = '';
      done();
      return;
    }
  }

  override _final(done: (error?: Error | null) => void): void {
    if (this.partial.length > 0) this.emitLine(this.partial, 0, this.partial.length);
    this.partial = '';
    done();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    this.hooks.close().then(
      () => done(error),
      () => done(error),
    );
  }

  private emitLine(data: string, from: number, end: number): void {
    const stop = end > from && data.charCodeAt(end - 1) === 13 ? end - 1 : end;
    this.hooks.line(data, from, stop);
  }
}

/**
 * `data` from `from` on, copied into pieces that each end with a newline (the last one: where `data` ends).
 * `join` writes a slice and its last character into a new flat string, which no longer refers to `data`
 * (a rope of the two, flattened, would be read through the rope at every character).
 */
function copiesInPieces(data: string, from: number): string[] {
  const pieces: string[] = [];
  for (let at = from; at < data.length; ) {
    const nl = data.indexOf('\n', at + PIECE_CHARS - 1);
    const end = nl === -1 ? data.length : nl + 1;
    pieces.push([data.slice(at, end - 1), data.charAt(end - 1)].join(''));
    at = end;
  }
  return pieces;
}

/** pino's configuration, posted by pino to a transport that declares it expects one (pino >= 9.4). */
export function pinoConfig(): Promise<Partial<PinoConfig>> {
  return new Promise((resolve) => {
    const onMessage = (message: { code?: string; config?: Partial<PinoConfig> }) => {
      if (message?.code !== 'PINO_CONFIG') return;
      parentPort?.off('message', onMessage);
      resolve(message.config ?? {});
    };
    parentPort?.on('message', onMessage);
  });
}
