/**
 * The transport's end of thread-stream: the stream pino's worker writes the app's lines to.
 *
 *   app thread: pino ──(SharedArrayBuffer)──▶ thread-stream's worker loop: UTF-8 → string ──▶ LineReader
 *                                                       'drain' ◀── a chunk taken ──┘   └▶ UTF-8, once
 *
 * thread-stream hands over strings holding many lines. pino-abstract-transport would pass each through
 * split2, a Transform whose writable side turns the string back into a Buffer and decodes it again, and whose
 * readable side emits a line at a time; here a chunk is encoded once into a reused buffer and cut at its
 * newlines there: the one-pass path reads bytes and writes bytes (fast-document.ts). The rest of that
 * module's contract is kept: `\r\n` ends a line as `\n` does, an unterminated last line is read at the end,
 * pino's configuration (levels, message and error keys) is awaited when pino says it sends it, and the close
 * hook runs before 'close', which is what lets thread-stream end the worker.
 *
 * A chunk is everything pino wrote since the worker last read: up to the whole 4 MiB buffer when the app
 * logs faster than the outputs take lines. V8 allocates a string that size as a large object; were it held
 * while its lines are read (thread-stream's loop holds it until the write call returns), each scavenge
 * meanwhile would move it to the old generation, where only a full collection frees it, and the worker's
 * heap would grow by a chunk per scavenge. The chunk is encoded at once into a buffer outside the heap,
 * reused chunk after chunk, and read once that loop has returned: the string dies young.
 */
import { Writable } from 'node:stream';
import { parentPort } from 'node:worker_threads';
import type { PinoConfig } from './ecs.js';
import { ByteSink, wellFormed } from './fast-output.js';

export interface LineReaderHooks {
  /**
   * One line, `src[start, end)` (its line ending left out; `src[end]` is its `\n` or `\r`): read in place.
   * `src` is reused for the next chunk once the line is read.
   */
  line(src: Buffer, start: number, end: number): void;
  /**
   * One line as a string: a line that continues a chunk's last one, the unterminated last line, and lines
   * of a chunk with a lone surrogate (which UTF-8 cannot carry; thread-stream's chunks never have one).
   */
  text(line: string): void;
  /** After each line: a promise while an output has no room (reading stops until it settles). */
  room(): Promise<unknown> | undefined;
  /** When the stream ends or is destroyed; 'close' waits for it. */
  close(): Promise<void>;
}

export class LineReader extends Writable {
  /** An unterminated last line, waiting for the rest of it in the next chunk. */
  private partial = '';
  /** The chunk being read, encoded, its bytes, and where its next line starts. */
  private readonly chunk = new ByteSink(64 * 1024);
  private used = 0;
  private from = 0;

  constructor(private readonly hooks: LineReaderHooks) {
    // highWaterMark 1: every chunk answers "wait for 'drain'" until it is taken, so an output without room
    // holds thread-stream (and so pino's buffer on the app side) rather than lines piling up here.
    super({ decodeStrings: false, highWaterMark: 1, autoDestroy: true });
  }

  override _write(chunk: string | Buffer, _encoding: string, done: (error?: Error | null) => void): void {
    let data = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    if (this.partial.length > 0) {
      // The line the last chunk ended in: completed on its own, so that the chunk is never copied to be
      // joined to it.
      const nl = data.indexOf('\n');
      if (nl === -1) {
        this.partial += data;
        done();
        return;
      }
      const line = this.partial + data.slice(0, nl);
      this.partial = '';
      this.text(line);
      data = data.slice(nl + 1);
    }
    if (!wellFormed(data)) {
      this.readText(data, done);
      return;
    }
    this.encode(data);
    this.from = 0;
    // Read once thread-stream's loop has returned: while it runs, the chunk is held by the frames below this
    // one, and each scavenge during the read would move it to the old generation.
    queueMicrotask(() => {
      if (!this.waitForRoom(done)) this.read(done);
    });
  }

  /** `data` into the chunk buffer, as UTF-8. */
  private encode(data: string): void {
    const sink = this.chunk;
    sink.length = 0;
    // Most chunks are ASCII, as many bytes as characters; a write that filled the buffer may have been cut
    // short (Buffer.write writes whole characters only), and is measured and written again.
    sink.room(data.length + 4);
    let written = sink.buf.write(data, 0);
    if (written > sink.buf.length - 4) {
      sink.room(Buffer.byteLength(data) + 4);
      written = sink.buf.write(data, 0);
    }
    this.used = written;
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
    const buf = this.chunk.buf;
    const used = this.used;
    let from = this.from;
    for (let nl = buf.indexOf(10, from); nl !== -1 && nl < used; nl = buf.indexOf(10, from)) {
      this.hooks.line(buf, from, nl > from && buf[nl - 1] === 13 ? nl - 1 : nl);
      from = nl + 1;
      this.from = from;
      if (this.waitForRoom(done)) return;
    }
    this.partial = from < used ? buf.toString('utf8', from, used) : '';
    this.used = 0;
    done();
  }

  /** The lines of a chunk that UTF-8 cannot carry, as strings. */
  private readText(data: string, done: (error?: Error | null) => void): void {
    const lines = data.split('\n');
    this.partial = lines.pop() as string;
    for (const line of lines) this.text(line);
    const wait = this.hooks.room();
    if (wait) wait.then(() => done(), done);
    else done();
  }

  private text(line: string): void {
    this.hooks.text(line.endsWith('\r') ? line.slice(0, -1) : line);
  }

  override _final(done: (error?: Error | null) => void): void {
    if (this.partial.length > 0) this.text(this.partial);
    this.partial = '';
    done();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    this.hooks.close().then(
      () => done(error),
      () => done(error),
    );
  }
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
