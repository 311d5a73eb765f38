/**
 * `lockRows(tx, table, ids, options)`: lock several rows in ascending key order, in one statement.
 * Two transactions that lock the same rows in different orders can deadlock (40P01); locking in one global
 * order cannot. PostgreSQL applies the row locks as the sorted rows are produced, so `ORDER BY key` with
 * `FOR UPDATE` locks in key order (https://www.postgresql.org/docs/current/sql-select.html#SQL-FOR-UPDATE-SHARE).
 */
import type pg from 'pg';
import { PgsightError } from '../errors.js';
import { Transaction } from './transaction.js';

export type LockMode = 'update' | 'no key update' | 'share' | 'key share';

export interface LockRowsOptions {
  /** @default 'update' */
  mode?: LockMode;
  /** Skip rows another transaction holds instead of waiting. @default false */
  skipLocked?: boolean;
  /** Fail at once (55P03) instead of waiting. @default false */
  nowait?: boolean;
  /** The key column the ids are compared with and sorted by. @default 'id' */
  key?: string;
}

const MODES: Record<LockMode, string> = {
  update: 'FOR UPDATE',
  'no key update': 'FOR NO KEY UPDATE',
  share: 'FOR SHARE',
  'key share': 'FOR KEY SHARE',
};

/** Quote an identifier as PostgreSQL does (https://www.postgresql.org/docs/current/sql-syntax-lexical.html). */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `schema.table` or `table`, each part quoted. */
function quoteQualified(name: string): string {
  return name.split('.').map(quoteIdentifier).join('.');
}

function invalid(problem: string): never {
  throw new PgsightError('PGSIGHT_ERR_ARGUMENT_INVALID', `lockRows(): ${problem}`);
}

export async function lockRows<Row extends pg.QueryResultRow = pg.QueryResultRow>(
  tx: Transaction,
  table: string,
  ids: readonly unknown[],
  options: LockRowsOptions = {},
): Promise<Row[]> {
  if (!(tx instanceof Transaction)) invalid('tx must be the transaction handed to a transaction() function');
  if (typeof table !== 'string' || !/^[^.\0]+(\.[^.\0]+)?$/.test(table))
    invalid(`table must be "name" or "schema.name", got ${JSON.stringify(table)}`);
  if (!Array.isArray(ids)) invalid('ids must be an array');
  const mode = options.mode ?? 'update';
  if (!(mode in MODES))
    invalid(`mode must be one of ${Object.keys(MODES).join(', ')}, got ${JSON.stringify(mode)}`);
  if (options.skipLocked && options.nowait) invalid('skipLocked and nowait cannot both be set');
  const key = options.key ?? 'id';
  if (typeof key !== 'string' || key.length === 0 || key.includes('\0'))
    invalid(`key must be a column name, got ${JSON.stringify(key)}`);
  if (ids.length === 0) return [];
  const column = quoteIdentifier(key);
  const wait = options.skipLocked ? ' SKIP LOCKED' : options.nowait ? ' NOWAIT' : '';
  const result = await tx.query<Row>(
    `SELECT * FROM ${quoteQualified(table)} WHERE ${column} = ANY($1) ORDER BY ${column} ${MODES[mode]}${wait}`,
    [ids],
  );
  return result.rows;
}
