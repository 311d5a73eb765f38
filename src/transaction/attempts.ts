/**
 * The outermost transaction's attempts: lease a client, BEGIN, run the function, COMMIT; on a retryable
 * SQLSTATE roll back, give the client back, wait the backoff and run it all again
 * (https://www.postgresql.org/docs/current/mvcc-serialization-failure-handling.html: retry the whole
 * transaction, never part of it). A connection lost after COMMIT was sent is an unknown outcome, never retried.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { context, isSpanContextValid, type Span, trace } from '@opentelemetry/api';
import type pg from 'pg';
import { counted, dbEvent, errorFields, transactionLabel } from '../ecs/fields.js';
import { currentLogScope } from '../ecs/log-context.js';
import type { Origin } from '../ecs/origin.js';
import { pgsightLogger } from '../ecs/pgsight-logger.js';
import { closeTally, dropTally, type QueryTally, withQueryTally } from '../ecs/query-tally.js';
import { PgsightError } from '../errors.js';
import { backoffDelayMs } from '../pg/backoff.js';
import { isConnectionLoss } from '../pg/connection.js';
import { namespaceOf } from '../pg/namespace.js';
import { sqlStateOf } from '../pg/sqlstate.js';
import { ACTIVE, abortError, type Client, type Hook, store, Transaction } from './handle.js';
import { BROKEN, giveBack, type Leased, lease } from './lease.js';
import type { ResolvedOptions } from './options.js';
import { attachRollbackError } from './savepoint.js';
import {
  NO_SPAN,
  recordEnd,
  recordRetry,
  startTransactionSpan,
  type TransactionInfo,
  type TransactionOutcome,
} from './telemetry.js';
import { Watchdog } from './watchdog.js';

export const isPool = (db: unknown): db is pg.Pool =>
  typeof (db as pg.Pool).connect === 'function' && typeof (db as pg.Pool).totalCount === 'number';

async function runHooks(hooks: Hook[], kind: string, name: string): Promise<void> {
  for (const hook of hooks) {
    try {
      await hook();
    } catch (error) {
      pgsightLogger().error(
        {
          event: dbEvent(`db.transaction.${kind}_hook_failed`),
          db: { transaction: { name } },
          error: errorFields(error),
        },
        `${kind} hook of ${transactionLabel(name)} failed`,
      );
    }
  }
}

/**
 * One outermost transaction, across its attempts: what every attempt needs, in one object (an async
 * function's every argument and local is kept in its frame while it waits). It is the transaction's
 * TransactionInfo too (name, isolation level, namespace) for spans and records.
 */
interface Run<T> extends TransactionInfo {
  db: pg.Pool | Client;
  pooled: boolean;
  fn: (tx: Transaction) => T | Promise<T>;
  opts: ResolvedOptions;
  /** Undefined when the watchdog is off. */
  origin: Origin | undefined;
  span: Span;
  startedAt: number;
  /** Each failed attempt's SQLSTATE; created by the first failure. */
  sqlStates: string[] | undefined;
}

/** The outermost transaction: its span, then its attempts. */
export function runOutermost<T>(
  db: pg.Pool | Client,
  fn: (tx: Transaction) => T | Promise<T>,
  opts: ResolvedOptions,
  origin: Origin | undefined,
): Promise<T> {
  const pooled = isPool(db);
  const run: Run<T> = {
    name: opts.name,
    isolationLevel: opts.isolationLevel,
    namespace: pooled
      ? (db as unknown as { options?: { database?: string } }).options?.database
      : namespaceOf(db as Client),
    db,
    pooled,
    fn,
    opts,
    origin,
    span: NO_SPAN,
    startedAt: performance.now(),
    sqlStates: undefined,
  };
  const span = startTransactionSpan(run);
  run.span = span;
  // Everything from here runs in the span's context, so BEGIN, the body's queries and COMMIT are its children.
  // With no tracer provider (or a span with an invalid context) there is nothing to put in the context.
  if (span === NO_SPAN || !isSpanContextValid(span.spanContext())) return attempts(run);
  return context.with(trace.setSpan(context.active(), span), () => attempts(run));
}

type Phase = 'begin' | 'body' | 'commit';

async function attempts<T>(run: Run<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const client = await lease(run.db, run.pooled);
    const tx = open(run, client, attempt);
    let phase: Phase = 'begin';
    let tally: QueryTally | undefined;
    try {
      await tx.query(run.opts.beginSql);
      phase = 'body';
      // The body's queries are counted for N+1 (query-tally.ts): per attempt, as a retried attempt runs
      // its statements again.
      const result = await withQueryTally('transaction', undefined, currentLogScope(), (opened, isNew) => {
        if (isNew) tally = opened;
        return store.run(tx, run.fn, tx);
      });
      if (run.opts.signal?.aborted) throw abortError(run.opts.signal);
      phase = 'commit';
      await client.query('COMMIT');
      // Committed; a connection error seen meanwhile (the socket closing after COMMIT's answer) still
      // means the client is not to be reused.
      giveBack(tx, run.pooled, client[BROKEN] === true);
      recordEnd(run, run.span, 'committed', attempt, run.startedAt, run.sqlStates?.at(-1), undefined);
      if (tally) closeTally(tally);
      if (tx.afterCommitHooks) await runHooks(tx.afterCommitHooks, 'after_commit', run.name);
      return result;
    } catch (error) {
      // Throws, unless the transaction is to be run again: then this attempt's counts are dropped.
      try {
        await failed(run, tx, phase, error);
      } catch (final) {
        if (tally) closeTally(tally);
        throw final;
      }
      if (tally) dropTally(tally);
    }
  }
}

/** The attempt's Transaction on a leased client, watched when the watchdog is on. */
function open<T>(run: Run<T>, client: Leased, attempt: number): Transaction {
  // A pool's transaction names its database from the pool's options until a client (which knows its
  // search_path too) is leased.
  if (run.pooled) {
    const namespace = namespaceOf(client);
    if (namespace !== run.namespace && namespace !== undefined)
      run.span.setAttribute('db.namespace', namespace);
    run.namespace = namespace;
  }
  const tx = new Transaction({
    client,
    name: run.name,
    depth: 0,
    attempt,
    db: run.db,
    span: run.span,
    watchdog: undefined,
    signal: run.opts.signal,
  });
  if (attempt < run.opts.maxAttempts && !run.opts.signal?.aborted) tx.retriedOn = run.opts.retryOn;
  if (run.origin) tx.watchdog = new Watchdog(client, tx, run.origin);
  client[ACTIVE] = tx;
  return tx;
}

/**
 * After a failed attempt: roll back, release, and either return (the transaction runs again, after its
 * backoff) or throw what the caller gets.
 */
async function failed<T>(run: Run<T>, tx: Transaction, phase: Phase, error: unknown): Promise<void> {
  const opts = run.opts;
  const span = run.span;
  const info: TransactionInfo = run;
  const client = tx.client as Leased;
  const attempt = tx.attempt;
  const code = sqlStateOf(error);
  run.sqlStates ??= [];
  const sqlStates = run.sqlStates;
  if (code) sqlStates.push(code);
  if (phase === 'commit' && isConnectionLoss(error)) {
    giveBack(tx, run.pooled, true);
    const unknown = new PgsightError(
      'PGSIGHT_ERR_TX_OUTCOME_UNKNOWN',
      `${transactionLabel(info.name)}: the connection was lost after COMMIT was sent; it may or may not have committed`,
      { cause: error },
    );
    recordEnd(info, span, 'unknown', attempt, run.startedAt, code, error);
    throw unknown;
  }
  // A failed COMMIT has already ended the transaction on the server; anything else needs a ROLLBACK.
  if (phase !== 'commit' && !client[BROKEN]) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackError) {
      client[BROKEN] = true;
      attachRollbackError(error, rollbackError);
    }
  }
  giveBack(tx, run.pooled, client[BROKEN] === true || isConnectionLoss(error));
  const retryable = code !== undefined && opts.retryOn.has(code) && !opts.signal?.aborted;
  if (retryable && attempt < opts.maxAttempts) {
    const delayMs = backoffDelayMs(attempt, opts.baseMs, opts.maxMs);
    recordRetry(info, span, attempt, code, delayMs);
    if (delayMs > 0)
      await sleep(delayMs, undefined, opts.signal ? { signal: opts.signal } : undefined).catch(() => {});
    if (opts.signal?.aborted) {
      recordEnd(info, span, 'rolled_back', attempt, run.startedAt, code, error);
      throw abortError(opts.signal);
    }
    return;
  }
  const outcome: TransactionOutcome = retryable ? 'retries_exhausted' : 'rolled_back';
  recordEnd(info, span, outcome, attempt, run.startedAt, code, error);
  if (tx.afterRollbackHooks) await runHooks(tx.afterRollbackHooks, 'after_rollback', info.name);
  if (retryable) {
    throw new PgsightError(
      'PGSIGHT_ERR_TX_RETRIES_EXHAUSTED',
      `${transactionLabel(info.name)} failed on all ${counted(attempt, 'attempt')} (${sqlStates.join(', ')})`,
      { cause: error, details: [...sqlStates] },
    );
  }
  throw error;
}
