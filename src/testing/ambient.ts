/**
 * The test transaction of `useTestTransaction(pool)`: one transaction on one of the pool's clients that every
 * use of the pool joins, rolled back by `end()`. It patches the pool's `connect` and `query` while it runs:
 * for tests only, never production code.
 */
import type pg from 'pg';
import { ACTIVE, type Client, Transaction } from '../transaction/handle.js';
import type { Leased } from '../transaction/lease.js';

/**
 * Open a transaction on one of the pool's clients that every use of the pool joins
 * (`transaction(pool)` nests as a savepoint, `pool.query` and `pool.connect` get that client), and that
 * `end()` rolls back. Not for production code.
 */
export async function beginAmbientTransaction(
  pool: pg.Pool,
): Promise<{ transaction: Transaction; end: () => Promise<void> }> {
  const client = (await pool.connect()) as Client;
  await client.query('BEGIN');
  const tx = new Transaction({
    client,
    name: 'test',
    depth: 0,
    attempt: 1,
    db: pool,
    span: undefined,
    watchdog: undefined,
    signal: undefined,
  });
  const owned = pool as unknown as Record<string | symbol, unknown>;
  const saved = { connect: owned.connect, query: owned.query };
  owned[ACTIVE] = tx;
  // `transaction(client)` on the client the pool hands out nests too.
  (client as Leased)[ACTIVE] = tx;
  const borrowed = borrowedClient(client);
  owned.connect = (callback?: (err: unknown, c?: unknown, done?: () => void) => void) => {
    if (callback) {
      callback(undefined, borrowed, () => {});
      return undefined;
    }
    return Promise.resolve(borrowed);
  };
  owned.query = (...args: unknown[]) => (client.query as (...a: unknown[]) => unknown)(...args);
  return {
    transaction: tx,
    end: async () => {
      owned.connect = saved.connect;
      owned.query = saved.query;
      owned[ACTIVE] = undefined;
      (client as Leased)[ACTIVE] = undefined;
      let broken = false;
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      client.release?.(broken ? new Error('pgsight: test transaction could not roll back') : undefined);
    },
  };
}

/**
 * The test transaction's client as code under test sees it after `pool.connect()`: the same client (pg keeps
 * a query's state on the object it runs on, so every method runs on the real one), except that `release()`
 * keeps it: code under test releasing its client must not end the test's transaction.
 */
function borrowedClient(client: Client): Client {
  const keep = () => {};
  return new Proxy(client, {
    get(target, key) {
      if (key === 'release') return keep;
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
