/**
 * `transaction(db, fn, options)`: BEGIN (with isolation level and access mode in the statement), run `fn`
 * with a client bound to the transaction, COMMIT on success, ROLLBACK on any throw. Nested calls become
 * savepoints; the outermost call re-runs on retryable SQLSTATEs with exponential backoff and full jitter
 * (https://www.postgresql.org/docs/current/mvcc-serialization-failure-handling.html: retry the whole
 * transaction, never part of it).
 *
 *   transaction(pool, fn) ─ attempt 1: connect, BEGIN, fn(tx), COMMIT ─▶ afterCommit hooks
 *                          └ 40001/40P01: ROLLBACK, release, wait, attempt 2 ... until maxAttempts
 *     └ transaction(pool | tx, inner) ─ SAVEPOINT s, inner(tx'), RELEASE s  (throw: ROLLBACK TO s, rethrow)
 */
import type pg from 'pg';
import { PgsightError } from '../errors.js';
import { runOutermost } from './attempts.js';
import { ACTIVE, abortError, type Client, type Db, store, type Transaction } from './handle.js';
import { resolveOptions, type TransactionOptions } from './options.js';
import { runSavepoint } from './savepoint.js';
import { captureOrigin, watchdogEnabled } from './watchdog.js';

export { currentTransaction, type Db, getCurrentTransaction, Transaction } from './handle.js';

function validate(db: unknown, fn: unknown): void {
  // A pool, a client or a Transaction: each has `query`.
  const badDb = db === null || typeof db !== 'object' || typeof (db as pg.Pool).query !== 'function';
  if (!badDb && typeof fn === 'function') return;
  const problems: string[] = [];
  if (badDb) problems.push('db must be a pg Pool, a pg Client, or a running transaction');
  if (typeof fn !== 'function') problems.push('fn must be a function');
  throw new PgsightError('PGSIGHT_ERR_ARGUMENT_INVALID', `transaction(): ${problems.join('; ')}`, {
    details: problems,
  });
}

/** The transaction `db` should nest in, if any. */
function parentFor(db: Db): Transaction | undefined {
  // A marked client or pool holds its transaction; a Transaction answers with itself.
  const active = (db as unknown as Record<symbol, Transaction | undefined>)[ACTIVE];
  if (active) return active;
  const current = store.getStore();
  if (current && (current.db === db || current.client === db)) return current;
  return undefined;
}

export function transaction<T>(
  db: Db,
  fn: (tx: Transaction) => T | Promise<T>,
  options?: TransactionOptions,
): Promise<T> {
  return startTransaction(db, fn, options, transaction, fn);
}

/**
 * `transaction()` for pgsight's own wrappers (the decorator): `calledFrom` is the function the app called,
 * so the watchdog's recorded origin is the app's call site, not the wrapper's; `site` is the function that
 * identifies the call site for the origin cache (the decorated method).
 * @internal
 */
export function startTransaction<T>(
  db: Db,
  fn: (tx: Transaction) => T | Promise<T>,
  options: TransactionOptions | undefined,
  calledFrom: (...args: never[]) => unknown,
  site: unknown,
): Promise<T> {
  // Not `async`: every await layer costs a few microtask turns per transaction (bench/transaction.mjs).
  // Bad arguments still surface as a rejected promise, never as a synchronous throw.
  try {
    validate(db, fn);
    const opts = resolveOptions(options);
    if (opts.signal?.aborted) throw abortError(opts.signal);
    const parent = parentFor(db);
    if (parent) return runSavepoint(parent, fn, opts);
    // The opening location is for the watchdog's records only: nothing to capture when it is off.
    const origin = watchdogEnabled() ? captureOrigin(calledFrom, site, options?.name) : undefined;
    return runOutermost(db as pg.Pool | Client, fn, opts, origin);
  } catch (error) {
    return Promise.reject(error);
  }
}
