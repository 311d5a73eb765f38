/**
 * `pgsight/testing`: test helpers for code that uses pgsight's transactions.
 *
 * - `useTestTransaction(pool)`: every test runs inside a transaction that is rolled back afterwards; code
 *   under test that opens its own `transaction(pool, ...)` gets a savepoint in it.
 * - `createTestSchema({ name })`: an isolated schema (and a pool bound to it) per test file.
 */
import type pg from 'pg';
import { afterEach, beforeEach } from 'vitest';
import type { Transaction } from '../transaction/handle.js';
import { beginAmbientTransaction } from './ambient.js';

export { createTestSchema, type TestSchema, type TestSchemaOptions } from './schema.js';

export interface TestTransaction {
  /** The running test's transaction; throws outside a test. */
  readonly transaction: Transaction;
}

/** Register vitest hooks that wrap each test of the current file (or describe block) in a rolled-back transaction. */
export function useTestTransaction(pool: pg.Pool): TestTransaction {
  let current: Awaited<ReturnType<typeof beginAmbientTransaction>> | undefined;
  beforeEach(async () => {
    current = await beginAmbientTransaction(pool);
  });
  afterEach(async () => {
    await current?.end();
    current = undefined;
  });
  return {
    get transaction(): Transaction {
      if (!current) throw new Error('pgsight/testing: no test transaction is running (use it inside a test)');
      return current.transaction;
    },
  };
}
