/**
 * A disk spool: what an output cannot deliver now waits here, in order, bounded in bytes, and survives a
 * process restart. Segment files of NDJSON (`<seq>.ndjson`, one `{"id","doc"}` per line) are appended to and
 * replayed oldest first; a segment is deleted once every line of it was delivered.
 *
 * When the bound is hit, new lines are dropped and counted (the oldest, already waiting, are kept): the
 * policy documented in the README. Writes are synchronous: a spooled line is on disk before it is counted.
 */
import {
  appendFileSync,
  closeSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { join } from 'node:path';

export interface SpoolEntry {
  id: string;
  /** The document, already serialized as JSON. */
  json: string;
}

const SEGMENT_BYTES = 8 * 1024 * 1024;
const SEGMENT = /^(\d{12})\.ndjson$/;

export class Spool {
  private bytes = 0;
  private writeSeq = 0;
  private segments: number[] = [];
  /** The segment being replayed: never appended to, so releasing it loses nothing. */
  private reading: number | undefined;
  dropped = 0;
  spooled = 0;

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
  ) {
    mkdirSync(dir, { recursive: true });
    for (const name of readdirSync(dir)) {
      const match = SEGMENT.exec(name);
      if (!match) continue;
      this.segments.push(Number(match[1]));
      this.bytes += statSync(join(dir, name)).size;
    }
    this.segments.sort((a, b) => a - b);
    this.writeSeq = this.segments.at(-1) ?? 0;
    // A kill mid-write leaves a partial last line: cut it off, or the next append would be glued to it and
    // a good record lost with the torn one.
    for (const seq of this.segments) this.cutTornLine(seq);
  }

  /** Partial lines cut off when the spool was opened (left by a process killed mid-write), and their bytes. */
  torn = 0;
  tornBytes = 0;

  private cutTornLine(seq: number): void {
    const path = this.path(seq);
    try {
      const size = statSync(path).size;
      if (size === 0) return;
      const fd = openSync(path, 'r+');
      try {
        const tail = Buffer.alloc(Math.min(size, 64 * 1024));
        let end = size;
        // Back to the last newline, reading the file's end in blocks.
        for (;;) {
          const start = Math.max(0, end - tail.length);
          readSync(fd, tail, 0, end - start, start);
          const nl = tail.subarray(0, end - start).lastIndexOf(10);
          if (nl !== -1) {
            end = start + nl + 1;
            break;
          }
          if (start === 0) {
            end = 0;
            break;
          }
          end = start;
        }
        if (end < size) {
          ftruncateSync(fd, end);
          this.tornBytes += size - end;
          this.torn++;
          this.bytes -= size - end;
        }
      } finally {
        closeSync(fd);
      }
    } catch {
      // unreadable: replay skips what it cannot parse
    }
  }

  get size(): number {
    return this.bytes;
  }

  get empty(): boolean {
    return this.segments.length === 0;
  }

  private path(seq: number): string {
    return join(this.dir, `${String(seq).padStart(12, '0')}.ndjson`);
  }

  /** Append entries; returns how many were dropped because the spool is full. */
  append(entries: readonly SpoolEntry[]): number {
    let text = '';
    let dropped = 0;
    for (const entry of entries) {
      const line = `{"id":${JSON.stringify(entry.id)},"doc":${entry.json}}\n`;
      if (this.bytes + text.length + line.length > this.maxBytes) {
        dropped++;
        continue;
      }
      text += line;
    }
    if (text.length > 0) {
      let seq = this.segments.at(-1);
      if (
        seq === undefined ||
        seq === this.reading ||
        statSafe(this.path(seq)) + text.length > SEGMENT_BYTES
      ) {
        seq = ++this.writeSeq;
        this.segments.push(seq);
      }
      appendFileSync(this.path(seq), text);
      this.bytes += Buffer.byteLength(text);
      this.spooled += entries.length - dropped;
    }
    this.dropped += dropped;
    return dropped;
  }

  /** The oldest segment's entries, or undefined when the spool is empty. */
  oldest(): { seq: number; entries: SpoolEntry[] } | undefined {
    const seq = this.segments[0];
    if (seq === undefined) return undefined;
    this.reading = seq;
    const entries: SpoolEntry[] = [];
    let text = '';
    try {
      text = readFileSync(this.path(seq), 'utf8');
    } catch {
      // Removed by someone else: nothing to replay from it.
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      // {"id":"...","doc":{...}}: split without re-serializing the document.
      const comma = line.indexOf(',"doc":');
      if (comma === -1 || !line.startsWith('{"id":') || !line.endsWith('}')) continue; // a torn last line
      try {
        entries.push({ id: JSON.parse(line.slice(6, comma)) as string, json: line.slice(comma + 7, -1) });
      } catch {
        // a torn line from a crash mid-write: skip it
      }
    }
    return { seq, entries };
  }

  /** Forget a segment whose entries were all delivered. */
  release(seq: number): void {
    const size = statSafe(this.path(seq));
    try {
      unlinkSync(this.path(seq));
    } catch {
      // already gone
    }
    this.bytes = Math.max(0, this.bytes - size);
    this.segments = this.segments.filter((s) => s !== seq);
    if (this.reading === seq) this.reading = undefined;
  }
}

function statSafe(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
