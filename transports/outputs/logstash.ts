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
  const baseMs = options.retry?.baseMs ?? 100;
  const maxMs = options.retry?.maxMs ?? 30_000;
  let socket: Socket | undefined;
  let connected = false;
  let closed = false;
  let replaying = false;
  // TCP has no acknowledgements: lines written shortly before a connection dies may never have reached
  // Logstash. The last RECENT_MS of lines are kept and re-sent after a reconnect (at least once; every
  // document carries `event.id` for deduplication downstream).
  let recent: { at: number; id: string; json: string }[] = [];
  const RECENT_MS = 2000;
  const RECENT_MAX = 20_000;
  const remember = (id: string, json: string) => {
    const now = Date.now();
    recent.push({ at: now, id, json });
    if (recent.length > RECENT_MAX || (recent[0] as { at: number }).at < now - RECENT_MS) {
      let drop = 0;
      while (
        drop < recent.length &&
        (recent.length - drop > RECENT_MAX || (recent[drop] as { at: number }).at < now - RECENT_MS)
      )
        drop++;
      recent = recent.slice(drop);
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
      if (wasConnected && !closed && recent.length > 0) {
        const resend = recent;
        recent = [];
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

  async function replay(): Promise<void> {
    if (replaying) return;
    replaying = true;
    try {
      for (let segment = spool.oldest(); segment && connected; segment = spool.oldest()) {
        for (const entry of segment.entries) {
          if (!socket?.write(`${entry.json}\n`))
            await new Promise((resolve) => socket?.once('drain', resolve) ?? resolve(undefined));
          remember(entry.id, entry.json);
          stats.shipped++;
        }
        if (!connected) break;
        spool.release(segment.seq);
      }
    } finally {
      replaying = false;
    }
  }

  open(0);

  const drained = () =>
    new Promise<void>((resolve) => {
      if (!socket || socket.writableLength === 0) resolve();
      else socket.once('drain', () => resolve());
    });

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
