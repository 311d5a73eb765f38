/**
 * Transactions written by hand (`client.query('BEGIN')` ... `client.query('COMMIT')`), seen by the preload:
 * they get the same long/idle watchdog and `db.transaction.end` record as `transaction()`. A pooled client
 * released while still inside a transaction is flagged: the next borrower would inherit it.
 * pg >= 8.21 reports the ReadyForQuery state through `client.getTransactionStatus()` ('I', 'T' or 'E').
 */

import { dbEvent } from '../ecs/fields.js';
import { pgsightLogger } from '../ecs/pgsight-logger.js';
import { namespaceOf } from '../pg/namespace.js';
import type { NormalizedQuery } from '../pg/normalize.js';
import { type TransactionInfo, transactionEndRecord, transactionFields } from '../transaction/telemetry.js';
import { captureOrigin, Watchdog } from '../transaction/watchdog.js';

const MANUAL = Symbol('pgsight.manualTransaction');
const PGSIGHT_TX = Symbol.for('pgsight.transaction');
const WATCHED_POOL = Symbol('pgsight.watchedPool');

interface Manual {
  openedAt: number;
  watchdog: Watchdog;
}

type Tracked = {
  [MANUAL]?: Manual | undefined;
  [PGSIGHT_TX]?: unknown;
  database?: string;
  getTransactionStatus?: () => string | null;
};

// The first two letters of BEGIN, START, COMMIT, END, ROLLBACK, ABORT, lower-cased: any other statement
// (SELECT, UPDATE, ...) is passed over on two character reads, without normalizing it.
const pair = (a: number, b: number) => ((a | 0x20) << 8) | (b | 0x20);
const CANDIDATE = new Set(
  ['be', 'st', 'co', 'en', 'ro', 'ab'].map((p) => pair(p.charCodeAt(0), p.charCodeAt(1))),
);
const isCandidate = (text: string) => CANDIDATE.has(pair(text.charCodeAt(0), text.charCodeAt(1)));

/** What the records of a hand-written transaction say of it (`db.transaction.name` / `kind`: `manual`). */
const infoOf = (client: Tracked): TransactionInfo => ({
  name: 'manual',
  kind: 'manual',
  isolationLevel: undefined,
  namespace: namespaceOf(client),
});
const fields = (client: Tracked) => transactionFields(infoOf(client), 1);

export interface ManualTracker {
  /**
   * Called for every statement before it is sent; returns the watchdog to notify, if any. `calledFrom` is
   * the query function the app called (the opening location is its caller).
   */
  before(client: object, text: string, calledFrom: (...args: never[]) => unknown): Watchdog | undefined;
  /** Called when a statement ended. */
  after(client: object, text: string, error: unknown): void;
}

export function createManualTracker(normalize: (sql: string) => NormalizedQuery): ManualTracker {
  const verb = (text: string): string | undefined => {
    if (text.length > 200 || !isCandidate(text)) return undefined;
    const normalized = normalize(text);
    // ROLLBACK TO SAVEPOINT keeps the transaction open.
    if (normalized.operation === 'ROLLBACK' && /^ROLLBACK (TRANSACTION |WORK )?TO /.test(normalized.text))
      return undefined;
    return normalized.operation;
  };
  return {
    before(client, text, calledFrom) {
      const c = client as Tracked;
      if (c[PGSIGHT_TX]) return undefined; // transaction() tracks its own
      const open = c[MANUAL];
      if (open) return open.watchdog;
      const v = verb(text);
      if (v === 'BEGIN' || v === 'START') {
        const openedAt = performance.now();
        c[MANUAL] = {
          openedAt,
          watchdog: new Watchdog(c, { watchdogFields: () => fields(c) }, captureOrigin(calledFrom), openedAt),
        };
      }
      return undefined;
    },
    after(client, text, error) {
      const c = client as Tracked;
      const open = c[MANUAL];
      if (!open) return;
      const v = verb(text);
      if (v !== 'COMMIT' && v !== 'END' && v !== 'ROLLBACK' && v !== 'ABORT') return;
      open.watchdog.stop();
      c[MANUAL] = undefined;
      const committed = (v === 'COMMIT' || v === 'END') && !error;
      const outcome = committed
        ? 'committed'
        : error && (v === 'COMMIT' || v === 'END')
          ? 'unknown'
          : 'rolled_back';
      const durationMs = performance.now() - open.openedAt;
      const logger = pgsightLogger();
      const level = committed ? 'debug' : 'info';
      if (!logger.isLevelEnabled(level)) return;
      logger[level](
        transactionEndRecord(infoOf(c), 1, outcome, durationMs, undefined, undefined, undefined),
        `manual transaction ${outcome.replace('_', ' ')} in ${durationMs.toFixed(1)} ms`,
      );
    },
  };
}

/** Watch a pool's releases (once per pool): a client going back inside a transaction is flagged. */
export function watchPool(pool: object): void {
  const p = pool as {
    [WATCHED_POOL]?: boolean;
    on?: (event: string, fn: (...args: unknown[]) => void) => void;
  };
  if (p[WATCHED_POOL] || typeof p.on !== 'function') return;
  p[WATCHED_POOL] = true;
  p.on('release', (err: unknown, client: unknown) => {
    if (err) return; // destroyed, not returned
    const c = client as Tracked;
    const status = c.getTransactionStatus?.();
    const manual = c[MANUAL];
    if (status !== 'T' && status !== 'E' && !manual) return;
    manual?.watchdog.stop();
    c[MANUAL] = undefined;
    pgsightLogger().warn(
      {
        ...fields(c),
        event: dbEvent('db.transaction.released_open'),
      },
      `a client went back to the pool inside an open transaction (status ${status ?? 'unknown'}); the next user of this connection inherits it`,
    );
  });
}
