/**
 * Long- and idle-transaction detection. Each transaction gets two unref'd timers; nothing is formatted
 * until one fires. The opening code location is captured as a V8 structured stack (Error.captureStackTrace),
 * which is cheap; it is only formatted into text when a record is written (bench/transaction.mjs measures it).
 *
 * idle = no query in flight: the classic mistake is an HTTP call made inside a transaction, holding locks
 * and a pooled connection while PostgreSQL waits (compare idle_in_transaction_session_timeout,
 * https://www.postgresql.org/docs/current/runtime-config-client.html).
 */
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config.js';
import { pgsightLogger } from '../log/pgsight-logger.js';

export interface Origin {
  stack?: string;
}

/** Capture where a transaction was opened; `above` is the function whose caller is the origin. */
export function captureOrigin(above: (...args: never[]) => unknown): Origin {
  const origin: Origin = {};
  Error.captureStackTrace(origin, above);
  return origin;
}

// pgsight's own code (dist/ when installed, src/ under the tests), as URL and as path: frames from here,
// from Node internals and from pg are not where the app opened its transaction.
const OWN_CODE = new URL('..', import.meta.url);
const OWN_PREFIXES = [OWN_CODE.href, fileURLToPath(OWN_CODE)];
const PG_OR_NODE = /node:internal|node_modules[\\/]pg(-pool)?[\\/]/;
const isAppFrame = (frame: string) =>
  !OWN_PREFIXES.some((prefix) => frame.includes(prefix)) && !PG_OR_NODE.test(frame);

/** `log.origin.*` (ECS) and `code.stacktrace` for a record, from the first frame outside pgsight. */
export function originFields(origin: Origin): Record<string, unknown> {
  const stack = origin.stack ?? '';
  const frames = stack.split('\n').slice(1);
  const frame = frames.find(isAppFrame) ?? frames[0];
  const match = frame ? /at (?:(.+?) \()?(.+?):(\d+):(\d+)\)?$/.exec(frame.trim()) : null;
  const stackTrace = frames.map((f) => f.trim()).join('\n');
  if (!match) return { code: { stacktrace: stackTrace } };
  return {
    log: {
      origin: {
        file: { name: match[2], line: Number(match[3]) },
        ...(match[1] ? { function: match[1] } : {}),
      },
    },
    code: { stacktrace: stackTrace },
  };
}

let thresholds: { warnMs: number; idleMs: number } | undefined;

/** PGSIGHT_TX_WARN_MS / PGSIGHT_TX_IDLE_MS, read once. */
export function watchdogThresholds(): { warnMs: number; idleMs: number } {
  if (!thresholds) {
    const config = loadConfig({ onProblem: () => {} });
    thresholds = { warnMs: config.txWarnMs, idleMs: config.txIdleMs };
  }
  return thresholds;
}

/** For tests and for apps that configure in code. */
export function setWatchdogThresholds(value: { warnMs: number; idleMs: number } | undefined): void {
  thresholds = value;
}

export class Watchdog {
  private readonly openedAt = performance.now();
  private lastActivity = this.openedAt;
  private inFlight = 0;
  private longTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly fields: () => Record<string, unknown>,
    private readonly origin: Origin,
  ) {
    const { warnMs, idleMs } = watchdogThresholds();
    if (warnMs > 0) this.longTimer = setTimeout(() => this.onLong(), warnMs).unref();
    if (idleMs > 0) this.idleTimer = setTimeout(() => this.onIdle(idleMs), idleMs).unref();
  }

  queryStarted(): void {
    this.inFlight++;
  }

  queryEnded(): void {
    this.inFlight--;
    this.lastActivity = performance.now();
  }

  stop(): void {
    if (this.longTimer) clearTimeout(this.longTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.longTimer = undefined;
    this.idleTimer = undefined;
  }

  private onLong(): void {
    this.longTimer = undefined;
    const ms = performance.now() - this.openedAt;
    pgsightLogger().warn(
      this.record('db.transaction.long', ms, {}),
      `transaction open for ${Math.round(ms)} ms (PGSIGHT_TX_WARN_MS)`,
    );
  }

  private onIdle(idleMs: number): void {
    this.idleTimer = undefined;
    const idle = performance.now() - this.lastActivity;
    if (this.inFlight > 0 || idle < idleMs) {
      // Busy, or active recently: look again when the idle time could first reach the threshold.
      this.idleTimer = setTimeout(
        () => this.onIdle(idleMs),
        this.inFlight > 0 ? idleMs : idleMs - idle,
      ).unref();
      return;
    }
    pgsightLogger().warn(
      this.record('db.transaction.idle', performance.now() - this.openedAt, { idle_ms: Math.round(idle) }),
      `transaction idle for ${Math.round(idle)} ms with no query in flight (PGSIGHT_TX_IDLE_MS)`,
    );
  }

  private record(
    action: string,
    openMs: number,
    transaction: Record<string, unknown>,
  ): Record<string, unknown> {
    const fields = this.fields();
    const db = (fields.db ?? {}) as Record<string, unknown>;
    return {
      ...fields,
      event: {
        action,
        dataset: 'pgsight.db',
        kind: 'event',
        category: ['database'],
        duration: Math.round(openMs * 1e6),
      },
      db: { ...db, transaction: { ...(db.transaction as object), ...transaction } },
      ...originFields(this.origin),
    };
  }
}
