// A second database on the same server, for two-phase commit across databases: created when missing.
import pg from 'pg';
import { databaseUrl } from './db.js';

export const SECOND_DATABASE = 'pgsight_test_b';

export async function secondDatabaseUrl(): Promise<string> {
  const url = new URL(databaseUrl);
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [SECOND_DATABASE]);
    if (!rowCount)
      await admin.query(`CREATE DATABASE ${SECOND_DATABASE}`).catch((error: { code?: string }) => {
        // Created meanwhile by another test file: 42P04, or 23505 when both CREATE DATABASE statements race.
        if (error.code !== '42P04' && error.code !== '23505') throw error;
      });
  } finally {
    await admin.end();
  }
  url.pathname = `/${SECOND_DATABASE}`;
  return url.toString();
}

/** Drop a schema the ledger made in the second database (its ledger B), like createTestSchema's drop(). */
export async function dropSecondSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: await secondDatabaseUrl() });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema.replace(/"/g, '""')}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** max_prepared_transactions of the server: two-phase commit needs it above 0. */
export async function preparedTransactionsEnabled(): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const { rows } = await client.query('SHOW max_prepared_transactions');
  await client.end();
  if (rows[0].max_prepared_transactions === '0')
    throw new Error(
      `PostgreSQL at ${databaseUrl} has max_prepared_transactions = 0, so two-phase commit cannot be tested. ` +
        'Enable it: psql -c "ALTER SYSTEM SET max_prepared_transactions = 64", then restart PostgreSQL ' +
        '(.ci/run does this).',
    );
}
