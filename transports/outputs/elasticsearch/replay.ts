/**
 * After an outage: replay the spool oldest first, a bounded batch at a time, with backoff between failed
 * attempts. The probe is the replay itself: re-sending the first spooled batch needs only the privileges the
 * transport ships with (`create_doc`), where a ping (`HEAD /`) needs the `monitor` cluster privilege that a
 * least-privilege key does not have. Ids make the re-send safe (a document stored before answers 409). The
 * segment being replayed stays parsed across failed attempts, with how far it got, and a retry resumes there.
 * A 401 or 403 means reachable but refused: said once, with the privilege needed, and retried on.
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
  /** Called when the cluster refused the transport's credentials (401 / 403). */
  onRefused: (status: number, reason: string) => void;
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
    } catch (error) {
      const status = (error as { meta?: { statusCode?: number } }).meta?.statusCode;
      if (status === 401 || status === 403) c.onRefused(status, refusalReason(error));
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

function refusalReason(error: unknown): string {
  const body = (error as { meta?: { body?: { error?: { reason?: string } } } }).meta?.body;
  return body?.error?.reason ?? (error as Error).message;
}
