// The transport's reader of thread-stream's chunks: lines cut anywhere by the chunking come out whole, in
// order, with their line endings removed; an output without room stops reading after the line that filled it.
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { LineReader } from '../transports/line-reader.js';

function reader(room: () => Promise<unknown> | undefined = () => undefined) {
  const lines: string[] = [];
  let closed = 0;
  const stream = new LineReader({
    line: (src, start, end) => {
      // Where the one-pass path stops reading: the line's own ending, never the next line's bytes.
      if (src[end] !== 10 && src[end] !== 13) throw new Error(`line ends at byte ${src[end]}`);
      lines.push(src.toString('utf8', start, end));
    },
    text: (line) => lines.push(line),
    room,
    close: async () => {
      closed++;
    },
  });
  return { stream, lines, closed: () => closed };
}

async function writeAll(stream: LineReader, chunks: string[]) {
  for (const chunk of chunks) if (!stream.write(chunk)) await once(stream, 'drain');
  stream.end();
  await once(stream, 'close');
}

describe('LineReader', () => {
  it('joins lines cut across chunks at every position, multi-byte characters and CRLF included', async () => {
    const text = '{"a":"ünï😀"}\r\n\n{"b":2}\nplain text\r\n{"c":"x"}\n';
    const expected = ['{"a":"ünï😀"}', '', '{"b":2}', 'plain text', '{"c":"x"}'];
    for (let cut = 0; cut <= text.length; cut++)
      for (const size of [1, 3, 7]) {
        const chunks = [text.slice(0, cut)];
        for (let i = cut; i < text.length; i += size) chunks.push(text.slice(i, i + size));
        const r = reader();
        await writeAll(r.stream, chunks);
        expect(r.lines, `cut ${cut} size ${size}`).toEqual(expected);
      }
  });

  it('reads an unterminated last line at the end, and runs the close hook once before close', async () => {
    const r = reader();
    await writeAll(r.stream, ['{"a":1}\n{"b"', ':2}']);
    expect(r.lines).toEqual(['{"a":1}', '{"b":2}']);
    expect(r.closed()).toBe(1);
  });

  it('stops after the line an output had no room for, and goes on when it has', async () => {
    let release: () => void = () => {};
    let waited = false;
    const r = reader(() => {
      if (r.lines.length !== 2 || waited) return undefined;
      waited = true;
      return new Promise<void>((resolve) => {
        release = resolve;
      });
    });
    const done = writeAll(r.stream, ['one\ntwo\nthree\n', 'four\n']);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(r.lines).toEqual(['one', 'two']);
    release();
    await done;
    expect(r.lines).toEqual(['one', 'two', 'three', 'four']);
  });

  // Chunks of tens of thousands of characters are read from copies in pieces: lines across the pieces'
  // edges, across chunks, and waits for room inside a piece all keep every line whole and in order.
  const longText = (n: number) => {
    const lines: string[] = [];
    for (let i = 0; i < n; i++)
      lines.push(
        i % 97 === 0 ? '' : `{"i":${i},"s":"${'ü😀x'.repeat(i % 41)}${'y'.repeat((i * 7919) % 400)}"}`,
      );
    return { lines, text: lines.map((l, i) => (i % 5 === 0 ? `${l}\r\n` : `${l}\n`)).join('') };
  };

  it('reads long chunks whole, cut anywhere, the last line unterminated', async () => {
    const { lines, text } = longText(3000);
    const body = `${text}tail`;
    for (const size of [40_000, 65_537, 100_003, body.length]) {
      const chunks: string[] = [];
      for (let i = 0; i < body.length; i += size) chunks.push(body.slice(i, i + size));
      const r = reader();
      await writeAll(r.stream, chunks);
      expect(r.lines.length, `size ${size}`).toBe(lines.length + 1);
      expect(r.lines, `size ${size}`).toEqual([...lines, 'tail']);
    }
  });

  it('waits for room inside a long chunk and goes on from the same line', async () => {
    const { lines, text } = longText(3000);
    const waits = new Set([1, 700, 1499, 2999]);
    let waiting = 0;
    let readWhileWaiting = 0;
    const r = reader(() => {
      if (waiting > 0) readWhileWaiting++;
      if (!waits.delete(r.lines.length)) return undefined;
      waiting++;
      return new Promise<void>((resolve) =>
        setTimeout(() => {
          waiting--;
          resolve();
        }, 5),
      );
    });
    await writeAll(r.stream, [text.slice(0, 250_001), text.slice(250_001)]);
    expect(r.lines).toEqual(lines);
    expect(waits.size).toBe(0);
    expect(readWhileWaiting).toBe(0);
  });
});
