/**
 * Logstash output: json_lines over TCP (the `tcp` input with `codec => json_lines`). Reconnects with backoff
 * and full jitter; while disconnected, lines go to the disk spool and are replayed in order on reconnect.
 * TCP has no acknowledgements: a line is counted shipped once the socket accepted it.
 */
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { Spool } from '../spool.js';
import { backoffMs, emptyStats, type Output, sleep } from './output.js';

export interface LogstashOutputOptions {
  type: 'logstash';
  host: string;
  port: number;
  /** @default '.pgsight-spool' */
  spoolDir?: string;
  /** @default 268435456 (256 MiB) */
  maxSpoolBytes?: number;
  /** @default { baseMs: 100, maxMs: 30000 } */
  retry?: { baseMs?: number; maxMs?: number };
}

export function createLogstashOutput(options: LogstashOutputOptions): Output {
  const stats = emptyStats();
  const spool = new Spool(
    join(options.spoolDir ?? '.pgsight-spool', `logstash-${options.host}-${options.port}`),
    options.maxSpoolBytes ?? 256 * 1024 * 1024,
  );
  // A line torn by a kill mid-write was a record: lost, and counted.
  stats.dropped += spool.torn;
  const baseMs = options.retry?.baseMs ?? 100;
  const maxMs = options.retry?.maxMs ?? 30_000;
  let socket: Socket | undefined;
  let connected = false;
  let closed = false;
  let replaying = false;
  // TCP has no acknowledgements: lines written before a connection died may never have reached Logstash
  // (a busy Logstash can leave them unread in socket buffers for a while). The most recent lines, up to
  // RECENT_MS old and RECENT_BYTES in all, are kept and re-sent after a reconnect: at least once; every
  // document carries `event.id` for deduplication downstream.
  const RECENT_MS = 10_000;
  const RECENT_BYTES = 8 * 1024 * 1024;
  let recent: { at: number; id: string; json: string }[] = [];
  let recentBytes = 0;
  let recentStart = 0;
  const remember = (id: string, json: string) => {
    const now = Date.now();
    recent.push({ at: now, id, json });
    recentBytes += json.length;
    while (recentStart < recent.length) {
      const oldest = recent[recentStart] as { at: number; json: string };
      if (recentBytes <= RECENT_BYTES && oldest.at >= now - RECENT_MS) break;
      recentBytes -= oldest.json.length;
      recentStart++;
    }
    if (recentStart > 4096) {
      recent = recent.slice(recentStart);
      recentStart = 0;
    }
  };
  const toSpool = (id: string, json: string) => {
    const dropped = spool.append([{ id, json }]);
    stats.dropped += dropped;
    stats.spooled += 1 - dropped;
  };

  function open(attempt: number): void {
    if (closed) return;
    const s = connect({ host: options.host, port: options.port });
    s.setNoDelay(false);
    s.on('connect', () => {
      socket = s;
      connected = true;
      void replay();
    });
    s.on('error', () => {});
    s.on('close', () => {
      const wasConnected = connected && socket === s;
      if (socket === s) {
        connected = false;
        socket = undefined;
      }
      if (wasConnected && !closed && recent.length > recentStart) {
        const resend = recent.slice(recentStart);
        recent = [];
        recentStart = 0;
        recentBytes = 0;
        const dropped = spool.append(resend);
        stats.dropped += dropped;
        stats.retried += resend.length - dropped;
      }
      if (!closed) {
        if (wasConnected) stats.retried++;
        void sleep(backoffMs(wasConnected ? 1 : attempt + 1, baseMs, maxMs)).then(() =>
          open(wasConnected ? 1 : attempt + 1),
        );
      }
    });
  }

  /** Wait for the socket to drain, or to close (then the caller stops; what is unsent stays spooled). */
  const drainOrClose = (s: Socket) =>
    new Promise<void>((resolve) => {
      const done = () => {
        s.off('drain', done);
        s.off('close', done);
        resolve();
      };
      s.once('drain', done);
      s.once('close', done);
    });

  async function replay(): Promise<void> {
    if (replaying) return;
    replaying = true;
    try {
      for (let segment = spool.oldest(); segment && connected; segment = spool.oldest()) {
        for (const entry of segment.entries) {
          const s = socket;
          if (!s || !connected) break;
          if (!s.write(`${entry.json}\n`)) await drainOrClose(s);
          remember(entry.id, entry.json);
          stats.shipped++;
        }
        // A segment is released only once every line of it was handed to a live socket.
        if (!connected) break;
        spool.release(segment.seq);
      }
    } finally {
      replaying = false;
    }
  }

  open(0);

  const drained = async () => {
    if (socket && socket.writableLength > 0) await drainOrClose(socket);
  };

  return {
    name: `logstash ${options.host}:${options.port}`,
    stats,
    write(id, json) {
      if (!connected || replaying || !spool.empty || !socket) {
        toSpool(id, json);
        return;
      }
      socket.write(`${json}\n`);
      remember(id, json);
      stats.shipped++;
    },
    async flush(deadlineMs) {
      const until = Date.now() + deadlineMs;
      // Wait for a pending reconnect and replay, then for the socket to drain.
      while (Date.now() < until && (!spool.empty || replaying) && !closed) await sleep(20);
      await Promise.race([drained(), sleep(Math.max(0, until - Date.now()))]);
    },
    async close(deadlineMs) {
      await this.flush(deadlineMs);
      closed = true;
      await new Promise<void>((resolve) => {
        if (!socket) return resolve();
        socket.end(() => resolve());
        setTimeout(resolve, deadlineMs).unref();
      });
    },
  };
}
