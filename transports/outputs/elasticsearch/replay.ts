/**
 * After an outage: probe with backoff until Elasticsearch answers, then replay the spool oldest first, a
 * bounded batch at a time. A cluster that is down is probed with a ping, not by reading the spool; the
 * segment being replayed stays parsed across failed attempts, with how far it got, and a retry resumes there.
 */
import type { Client } from '@elastic/elasticsearch';
import type { Spool, SpoolEntry } from '../../spool.js';
import { backoffMs, type OutputStats, sleep } from '../output.js';
import type { BulkSender } from './bulk.js';
import type { ResolvedElasticsearchOptions } from './options.js';

export interface ReplayContext {
  client: Client;
  sender: BulkSender;
  spool: Spool;
  stats: OutputStats;
  options: ResolvedElasticsearchOptions;
  /** Called before each attempt: lines grouped for the spool go to disk first. */
  beforeAttempt: () => void;
  stopped: () => boolean;
}

/** Returns once the spool is empty, or the output stopped. */
export async function replaySpool(c: ReplayContext): Promise<void> {
  const { baseMs, maxMs } = c.options.retry;
  let segment: ReturnType<Spool['oldest']>;
  let cursor = 0;
  for (let attempt = 1; !c.stopped(); attempt++) {
    c.beforeAttempt();
    try {
      if (!(await c.client.ping())) throw new Error('ping failed');
      segment ??= c.spool.oldest();
      if (!segment) return;
      while (cursor < segment.entries.length) {
        const batch = nextBatch(segment.entries, cursor, c.options.flushBytes);
        await c.sender.deliver(batch);
        cursor += batch.length;
      }
      c.spool.release(segment.seq);
      segment = undefined;
      cursor = 0;
      attempt = 0;
    } catch {
      c.stats.retried++;
      await sleep(backoffMs(attempt, baseMs, maxMs));
    }
  }
}

function nextBatch(entries: readonly SpoolEntry[], from: number, maxBytes: number): SpoolEntry[] {
  const batch: SpoolEntry[] = [];
  let bytes = 0;
  for (let i = from; i < entries.length && bytes < maxBytes; i++) {
    const entry = entries[i] as SpoolEntry;
    batch.push(entry);
    bytes += entry.json.length;
  }
  return batch;
}
