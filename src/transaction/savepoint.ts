/**
 * Nested transactions as savepoints (https://www.postgresql.org/docs/current/sql-savepoint.html): a throw
 * inside rolls back to the savepoint only, and the outer transaction goes on.
 */

import { abortError, store, Transaction } from './handle.js';
import type { ResolvedOptions } from './options.js';
import { recordSavepointRollback } from './telemetry.js';

let savepointCounter = 0;

/** `transaction()` inside a running transaction: SAVEPOINT, the function, RELEASE (ROLLBACK TO on a throw). */
export async function runSavepoint<T>(
  parent: Transaction,
  fn: (tx: Transaction) => T | Promise<T>,
  opts: ResolvedOptions,
): Promise<T> {
  const savepoint = `pgsight_sp_${++savepointCounter}`;
  await parent.query(`SAVEPOINT ${savepoint}`);
  const tx = new Transaction({
    client: parent.client,
    name: opts.name === 'transaction' ? parent.name : opts.name,
    depth: parent.depth + 1,
    attempt: parent.attempt,
    db: parent.db,
    span: parent.span,
    watchdog: parent.watchdog,
    signal: opts.signal ?? parent.signal,
  });
  let result: T;
  try {
    result = await store.run(tx, fn, tx);
    if (tx.signal?.aborted) throw abortError(tx.signal);
  } catch (error) {
    try {
      await parent.client.query(`ROLLBACK TO SAVEPOINT ${savepoint}`);
      recordSavepointRollback(parent.span, savepoint, error);
    } catch (rollbackError) {
      attachRollbackError(error, rollbackError);
    }
    // The savepoint's work did not happen: its hooks are dropped with it.
    throw error;
  }
  await parent.query(`RELEASE SAVEPOINT ${savepoint}`);
  for (const hook of tx.afterCommitHooks ?? []) parent.afterCommit(hook);
  for (const hook of tx.afterRollbackHooks ?? []) parent.afterRollback(hook);
  return result;
}

/** The ROLLBACK's own failure, kept on the error the caller gets (`error.rollbackError`). */
export function attachRollbackError(error: unknown, rollbackError: unknown): void {
  if (error !== null && typeof error === 'object') {
    Object.defineProperty(error, 'rollbackError', {
      value: rollbackError,
      enumerable: false,
      configurable: true,
    });
  }
}
