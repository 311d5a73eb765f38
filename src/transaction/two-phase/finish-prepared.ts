/** COMMIT PREPARED / ROLLBACK PREPARED (https://www.postgresql.org/docs/current/sql-commit-prepared.html). */
import type pg from 'pg';
import { sqlStateOf } from '../../pg/sqlstate.js';
import { dedicated, type Queryable } from './decision-log.js';

/** undefined_object: the prepared transaction is gone (committed or rolled back by someone else). */
const GONE = '42704';
/** object_not_in_prerequisite_state: the prepared transaction is being finished by another session. */
const BUSY = '55000';

/** A gid already gone counts as done (recovery or a retry got there first). */
export async function finishPrepared(db: Queryable, verb: 'COMMIT' | 'ROLLBACK', gid: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await db.query(`${verb} PREPARED '${gid}'`);
      return;
    } catch (error) {
      if (sqlStateOf(error) === GONE) return;
      // "prepared transaction ... is busy": another session (recovery, or the coordinator) is finishing it,
      // with the same logged decision. Wait until it is gone.
      if (sqlStateOf(error) !== BUSY || attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10 * attempt));
    }
  }
}

/** On the participant's own session when it is usable, else on a dedicated connection. */
export function finishOn(
  pool: pg.Pool,
  client: pg.PoolClient | undefined,
  broken: boolean,
  verb: 'COMMIT' | 'ROLLBACK',
  gid: string,
): Promise<void> {
  return client && !broken
    ? finishPrepared(client, verb, gid)
    : dedicated(pool, (c) => finishPrepared(c, verb, gid));
}
