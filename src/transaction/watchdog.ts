/**
 * Long- and idle-transaction detection, by one periodic sweep over the open transactions; nothing is
 * formatted until a record fires. The opening code location is captured as a V8 structured stack (Error.captureStackTrace),
 * which is cheap; it is only formatted into text when a record is written (bench/transaction.mjs measures it).
 *
 * idle = no query in flight: the classic mistake is an HTTP call made inside a transaction, holding locks
 * and a pooled connection while PostgreSQL waits (compare idle_in_transaction_session_timeout,
 * https://www.postgresql.org/docs/current/runtime-config-client.html).
 */
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config.js';
import { currentLogScope, inLogScope } from '../log/context.js';
import { pgsightLogger } from '../log/pgsight-logger.js';

export interface Origin {
  stack?: string;
}

/** Capture where a transaction was opened; `above` is the function whose caller is the origin. */
export function captureOrigin(above: (...args: never[]) => unknown): Origin {
  const origin: Origin = {};
  // One frame, the app's call site: `above` is the pgsight function the app called, so the next frame is
  // the app's. More frames would make V8 walk the await chain for async frames, on every transaction.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = ORIGIN_FRAMES;
  Error.captureStackTrace(origin, above);
  Error.stackTraceLimit = limit;
  return origin;
}

/** Frames kept for `code.stacktrace`. */
const ORIGIN_FRAMES = 1;

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

/** False when both thresholds are 0: transactions then skip the watchdog entirely. */
export function watchdogEnabled(): boolean {
  const { warnMs, idleMs } = watchdogThresholds();
  return warnMs > 0 || idleMs > 0;
}

/** For tests and for apps that configure in code. */
export function setWatchdogThresholds(value: { warnMs: number; idleMs: number } | undefined): void {
  thresholds = value;
  // The sweep period follows the thresholds; the next transaction restarts the sweeper with the new one.
  clearInterval(sweeper);
  sweeper = undefined;
}

/**
 * Every open transaction's watchdog is in one set, swept by one unref'd interval: opening and closing a
 * transaction costs a set insertion and a deletion, not two timers. The interval stops itself once no
 * transaction has been open for a whole sweep. A record fires at most one sweep period late.
 */
const open = new Set<Watchdog>();
let sweeper: NodeJS.Timeout | undefined;

function sweepPeriodMs({ warnMs, idleMs }: { warnMs: number; idleMs: number }): number {
  const shortest = Math.min(warnMs || Number.POSITIVE_INFINITY, idleMs || Number.POSITIVE_INFINITY);
  return Math.max(10, Math.min(1000, Math.floor(shortest / 5)));
}

function sweep(): void {
  if (open.size === 0) {
    clearInterval(sweeper);
    sweeper = undefined;
    return;
  }
  const now = performance.now();
  const { warnMs, idleMs } = watchdogThresholds();
  for (const watchdog of open) watchdog.check(now, warnMs, idleMs);
}

export class Watchdog {
  private readonly openedAt = performance.now();
  private lastActivity = this.openedAt;
  private inFlight = 0;
  /** queryEnded, bound once: handed to every query promise's then(). */
  readonly ended = () => this.queryEnded();
  private longLogged = false;
  private idleLogged = false;

  /** The log context of the flow that opened the transaction: the sweep runs in a timer's. */
  private readonly scope = currentLogScope();

  constructor(
    private readonly fields: () => Record<string, unknown>,
    private readonly origin: Origin,
  ) {
    const thresholds = watchdogThresholds();
    open.add(this);
    sweeper ??= setInterval(sweep, sweepPeriodMs(thresholds)).unref();
  }

  queryStarted(): void {
    this.inFlight++;
  }

  queryEnded(): void {
    this.inFlight--;
    this.lastActivity = performance.now();
  }

  stop(): void {
    open.delete(this);
  }

  /** @internal called by the sweep */
  check(now: number, warnMs: number, idleMs: number): void {
    if (!this.longLogged && warnMs > 0 && now - this.openedAt >= warnMs) {
      this.longLogged = true;
      const ms = now - this.openedAt;
      inLogScope(this.scope, () =>
        pgsightLogger().warn(
          this.record('db.transaction.long', ms, {}),
          `transaction open for ${Math.round(ms)} ms (PGSIGHT_TX_WARN_MS)`,
        ),
      );
    }
    if (!this.idleLogged && idleMs > 0 && this.inFlight === 0 && now - this.lastActivity >= idleMs) {
      this.idleLogged = true;
      const idle = now - this.lastActivity;
      inLogScope(this.scope, () =>
        pgsightLogger().warn(
          this.record('db.transaction.idle', now - this.openedAt, { idle_ms: Math.round(idle) }),
          `transaction idle for ${Math.round(idle)} ms with no query in flight (PGSIGHT_TX_IDLE_MS)`,
        ),
      );
    }
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
