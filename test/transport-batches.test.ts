// The Elasticsearch output's batches are `_bulk` bodies written as documents arrive (batches.ts with
// bulk.ts's item writer). What Elasticsearch receives must be byte for byte the body joined from the
// documents' text, whatever they hold, and each document read back for a re-send or the spool must be the
// document that went in.
import { Client } from '@elastic/elasticsearch';
import { describe, expect, it } from 'vitest';
import { textId } from '../transports/document-id.js';
import { type Batch, BatchQueue } from '../transports/outputs/elasticsearch/batches.js';
import { BulkSender } from '../transports/outputs/elasticsearch/bulk.js';
import { resolveElasticsearchOptions } from '../transports/outputs/elasticsearch/options.js';
import { emptyStats } from '../transports/outputs/output.js';

function sender() {
  const options = resolveElasticsearchOptions(
    { type: 'elasticsearch', node: 'http://127.0.0.1:9' },
    'logs-pgsight-test',
  );
  return new BulkSender(new Client({ node: options.node }), options, emptyStats());
}

const docs = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      '@timestamp': '2026-01-01T00:00:00.000Z',
      message: `${'ünï😀 "quoted" \\ \u0001'.repeat(i % 7)}${'x'.repeat((i * 7919) % 3000)}`,
      n: i,
      // Now and then one document larger than a batch's first buffer.
      ...(i % 400 === 399 ? { big: 'é'.repeat(70_000) } : {}),
    }),
  );

describe('Elasticsearch batches', () => {
  it('are the body joined from the documents, and give each document back as it went in', () => {
    const bulk = sender();
    for (const flushBytes of [1, 4096, 100_000, 1024 * 1024]) {
      const batches: Batch[] = [];
      const queue = new BatchQueue(flushBytes, 1000, () => {}, bulk);
      const input = docs(1200);
      const ids = input.map((_, i) => `mx6abc0d6d6bfbb82e-${i.toString(36)}`);
      // An id from a spool written by something else needs escaping in the action line.
      ids[5] = 'an "odd" id\\ü';
      input.forEach((json, i) => {
        // Documents go in as strings or are written in place as bytes (the one-pass path), with a few
        // written and abandoned (a line the path declined midway) in between, and some larger than the room
        // asked for.
        const id = ids[i] as string;
        if (i % 3 === 0) {
          if (queue.add(id, json)) batches.push(queue.next() as Batch);
          return;
        }
        if (i % 5 === 1) {
          queue.begin(textId(id), 100).text('{"abandoned":true}');
          expect(queue.end(false)).toBe(false);
        }
        const sink = queue.begin(textId(id), i % 2 === 0 ? 16 : 3 * json.length);
        sink.text(json);
        if (queue.end(true)) batches.push(queue.next() as Batch);
      });
      queue.seal();
      for (let b = queue.next(); b; b = queue.next()) batches.push(b);
      expect(queue.bytes).toBe(0);
      const entries = batches.flatMap((b) => b.entries);
      expect(entries.map((e) => e.id)).toEqual(ids);
      expect(entries.map((e) => e.json)).toEqual(input);
      for (const batch of batches) {
        expect(batch.count).toBe(batch.entries.length);
        expect(batch.body.toString('utf8')).toBe(bulk.body(batch.entries));
        expect(batch.bytes).toBe(batch.body.length);
        // A batch is sealed by the document that makes it reach flushBytes.
        const last = Buffer.byteLength(bulk.body(batch.entries.slice(-1)));
        if (batch !== batches.at(-1)) expect(batch.bytes).toBeGreaterThanOrEqual(flushBytes);
        expect(batch.bytes - last).toBeLessThan(flushBytes);
      }
    }
  });

  it('takes everything waiting for the spool, open batch included', () => {
    const queue = new BatchQueue(50_000, 1000, () => {}, sender());
    const input = docs(300);
    input.forEach((json, i) => {
      queue.add(`id-${i}`, json);
    });
    expect(queue.queued).toBe(true);
    expect(queue.takeAll().map((e) => e.json)).toEqual(input);
    expect(queue.queued).toBe(false);
    expect(queue.bytes).toBe(0);
  });

  it("reuse a delivered batch's buffer for a later one, and never the buffer of one still waiting", () => {
    const queue = new BatchQueue(100_000, 1000, () => {}, sender());
    const held: { batch: Batch; text: string }[] = [];
    const storages = new Set<Buffer>();
    let reused = 0;
    let sealed = 0;
    docs(2400).forEach((json, i) => {
      if (!queue.add(`id-${i}`, json)) return;
      const batch = queue.next() as Batch;
      if (storages.has(batch.storage)) reused++;
      storages.add(batch.storage);
      // Every other batch is delivered at once; the others wait (in flight, or for a re-send).
      if (sealed++ % 2 === 0) {
        queue.recycle(batch);
        expect(() => batch.entries).toThrow(/after its buffer was reused/);
      } else held.push({ batch, text: batch.body.toString('utf8') });
    });
    expect(reused).toBeGreaterThan(5);
    for (const { batch, text } of held) {
      expect(batch.body.toString('utf8')).toBe(text);
      expect(batch.entries).toHaveLength(batch.count);
    }
  });
});
