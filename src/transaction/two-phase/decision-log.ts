/**
 * The coordinator's decision log: one row per global id, and the first writer wins (INSERT ... ON CONFLICT
 * DO NOTHING), so a coordinator logging 'commit' and a recovery logging 'rollback' for the same transaction
 * cannot both succeed.
 */
import type pg from 'pg';
import { connectGuarded, ignoreLateError } from '../../pg/connection.js';

export type Queryable = Pick<pg.ClientBase, 'query'>;
export type Decision = 'commit' | 'rollback';

const ensured = new WeakMap<pg.Pool, Set<string>>();

/** Create the log table when missing (once per pool and table). */
export async function ensureLog(coordinator: pg.Pool, table: string, session?: pg.ClientBase): Promise<void> {
  const tables = ensured.get(coordinator) ?? new Set();
  ensured.set(coordinator, tables);
  if (tables.has(table)) return;
  const client = session ?? (await connectGuarded(coordinator, ignoreLateError));
  try {
    await client.query('BEGIN');
    // Concurrent CREATE TABLE IF NOT EXISTS can still collide on the catalog: serialize them.
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('pgsight_2pc_log'))`);
    await client.query(`
      CREATE TABLE IF NOT EXISTS ${table} (
        global_id    text PRIMARY KEY,
        decision     text NOT NULL CHECK (decision IN ('commit', 'rollback')),
        participants text[] NOT NULL,
        decided_at   timestamptz NOT NULL DEFAULT now(),
        completed_at timestamptz
      )`);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    if (!session) {
      client.removeListener('error', ignoreLateError);
      (client as pg.PoolClient).release();
    }
  }
  tables.add(table);
}

/** The decision for `globalId`: the one written by `decision`, or the one someone wrote first. */
export async function decide(
  coordinator: Queryable,
  table: string,
  globalId: string,
  decision: Decision,
  participants: string[],
): Promise<Decision> {
  const written = await coordinator.query(
    `INSERT INTO ${table} (global_id, decision, participants) VALUES ($1, $2, $3)
     ON CONFLICT (global_id) DO NOTHING`,
    [globalId, decision, participants],
  );
  if (written.rowCount === 1) return decision;
  const { rows } = await coordinator.query<{ decision: Decision }>(
    `SELECT decision FROM ${table} WHERE global_id = $1`,
    [globalId],
  );
  return rows[0]?.decision ?? decision;
}

/** The logged decision, if any. */
export async function loggedDecision(
  log: Queryable,
  table: string,
  globalId: string,
): Promise<Decision | undefined> {
  const { rows } = await log.query<{ decision: Decision }>(
    `SELECT decision FROM ${table} WHERE global_id = $1`,
    [globalId],
  );
  return rows[0]?.decision;
}

/**
 * A connection of its own to the pool's database, outside the pool. Recovery and a participant whose
 * session broke use one: the pool may be exhausted by sessions waiting on the very locks a prepared
 * transaction holds, and whatever finishes that transaction must not queue behind them.
 */
export async function dedicated<T>(pool: pg.Pool, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const Client = (pool as unknown as { Client: new (config: unknown) => pg.Client }).Client;
  const client = new Client((pool as unknown as { options: unknown }).options);
  client.on('error', () => {}); // a failure surfaces through the query's rejection
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => {});
  }
}
