/**
 * The ledger's schema, applied at start. Idempotent (IF NOT EXISTS throughout) and serialized by an advisory
 * lock, so several instances starting together do not race.
 *
 * Money is bigint minor units (cents), never floats; `balance >= 0` is a constraint, so no code path can
 * overdraw an account even if the application check were skipped.
 */
import type pg from 'pg';
import { transaction } from 'pgsight';

export async function migrate(pool: pg.Pool, schema: string): Promise<void> {
  await transaction(
    pool,
    async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock(hashtext('pgsight-ledger-migrate'))`);
      await tx.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await tx.query(`SET LOCAL search_path TO ${schema}`);
      await tx.query(`
        CREATE TABLE IF NOT EXISTS accounts (
          id         bigserial PRIMARY KEY,
          balance    bigint NOT NULL CONSTRAINT balance_not_negative CHECK (balance >= 0),
          created_at timestamptz NOT NULL DEFAULT now()
        )`);
      await tx.query(`
        CREATE TABLE IF NOT EXISTS transfers (
          id              bigserial PRIMARY KEY,
          from_id         bigint NOT NULL REFERENCES accounts (id),
          to_id           bigint NOT NULL REFERENCES accounts (id),
          amount          bigint NOT NULL CHECK (amount > 0),
          created_at      timestamptz NOT NULL DEFAULT now(),
          receipt_sent_at timestamptz,
          CHECK (from_id <> to_id)
        )`);
      await tx.query('CREATE INDEX IF NOT EXISTS transfers_from_id ON transfers (from_id)');
      await tx.query('CREATE INDEX IF NOT EXISTS transfers_to_id ON transfers (to_id)');
      // The key is claimed first in a transfer's transaction: a concurrent request with the same key waits on
      // it, then finds the stored response.
      await tx.query(`
        CREATE TABLE IF NOT EXISTS idempotency_keys (
          key          text PRIMARY KEY,
          request_hash text NOT NULL,
          transfer_id  bigint REFERENCES transfers (id),
          response     jsonb,
          created_at   timestamptz NOT NULL DEFAULT now()
        )`);
      await tx.query(`
        CREATE TABLE IF NOT EXISTS outbox (
          id           bigserial PRIMARY KEY,
          topic        text NOT NULL,
          payload      jsonb NOT NULL,
          created_at   timestamptz NOT NULL DEFAULT now(),
          published_at timestamptz
        )`);
    },
    { name: 'migrate' },
  );
}
