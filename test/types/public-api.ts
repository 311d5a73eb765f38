// The published types as a user's code sees them: compiled by test/public-types.test.ts against dist/ through
// the package's own `exports` (import 'pgsight'), with lib checking on so a broken declaration fails too.
import pg from 'pg';
import {
  createLogger,
  currentTransaction,
  loadConfig,
  lockRows,
  PgsightError,
  Transaction,
  transaction,
  transactional,
  twoPhaseCommit,
} from 'pgsight';
import { createTestSchema, useTestTransaction } from 'pgsight/testing';
import type { OutputOptions, TransportOptions } from 'pgsight/transport';

const pool = new pg.Pool();

export async function transfer(from: number, to: number): Promise<number> {
  return transaction(
    pool,
    async (tx) => {
      const rows = await lockRows(tx, 'accounts', [from, to]);
      await tx.query('UPDATE accounts SET balance = balance - 1 WHERE id = $1', [from]);
      tx.afterCommit(() => undefined);
      const inner: number = await transaction(tx, async (sp) => sp.depth);
      return rows.length + inner + currentTransaction().attempt;
    },
    { isolationLevel: 'serializable', maxAttempts: 3, name: 'transfer' },
  );
}

export async function internalsAreHidden(tx: Transaction): Promise<void> {
  // @ts-expect-error the watchdog is pgsight's, not part of the public type
  tx.watchdog;
  // @ts-expect-error transactions are opened by transaction(), which takes no constructor arguments
  new Transaction({ client: tx.client, name: 'x' });
  // @ts-expect-error isolation levels are spelled as SQL spells them, in lower case
  await transaction(pool, async () => 1, { isolationLevel: 'SERIALIZABLE' });
}

export class Accounts {
  readonly pool = pool;

  @transactional({ name: 'open' })
  async open(balance: number): Promise<number> {
    await currentTransaction().query('INSERT INTO accounts (balance) VALUES ($1)', [balance]);
    return balance;
  }
}

export const outputs: OutputOptions[] = [
  { type: 'file', path: 'logs/app.ndjson' },
  { type: 'elasticsearch', node: 'http://127.0.0.1:9200', dataStream: 'logs-app-default' },
];
export const transport: TransportOptions = { outputs, redact: { keys: ['ssn'] } };
export const logger = createLogger({ environment: 'production', outputs });
export const slowMs: number = loadConfig().slowQueryMs;
export const isPgsightError = (e: unknown): e is PgsightError =>
  e instanceof PgsightError && e.code !== undefined;

export async function twoDatabases(a: pg.Pool, b: pg.Pool): Promise<void> {
  await twoPhaseCommit({
    coordinator: a,
    participants: { a, b },
    fn: async (clients) => {
      await clients.a.query('SELECT 1');
      await clients.b.query('SELECT 1');
    },
  });
}

export async function inTests(): Promise<void> {
  const db = await createTestSchema({ name: 'orders' });
  const test = useTestTransaction(db.pool);
  test.transaction.depth satisfies number;
  await db.drop();
}
