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
 */
import { Writable } from 'node:stream';
import { parentPort } from 'node:worker_threads';
import type { PinoConfig } from './ecs.js';

export interface LineReaderHooks {
  /** One line, without its line ending. */
  line(text: string): void;
  /** After each line: a promise while an output has no room (reading stops until it settles). */
  room(): Promise<unknown> | undefined;
  /** When the stream ends or is destroyed; 'close' waits for it. */
  close(): Promise<void>;
}

export class LineReader extends Writable {
  /** An unterminated last line, waiting for the rest of it in the next chunk. */
  private partial = '';
  /** The chunk being read, and where its next line starts. */
  private data = '';
  private from = 0;

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
    const data = this.data;
    let from = this.from;
    for (let nl = data.indexOf('\n', from); nl !== -1; nl = data.indexOf('\n', from)) {
      this.emitLine(data, from, nl);
      from = nl + 1;
      this.from = from;
      if (this.waitForRoom(done)) return;
    }
    this.partial = from < data.length ? data.slice(from) : '';
    this.data = '';
    done();
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
    this.hooks.line(data.slice(from, stop));
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
