/**
 * Transfers between two ledgers in two databases, with pgsight's `twoPhaseCommit`: the money leaves one
 * database and arrives in the other, or neither happens, even when the process dies half-way (recovery runs
 * at start and every 30 s).
 *
 * Ledger A is the main database; ledger B is LEDGER_SECOND_DATABASE_URL (default: the main database's name
 * with `_b`), created at start when missing. Whatever the direction, rows are locked in A first, then B:
 * PostgreSQL cannot detect a deadlock that runs from one database to the other through this process.
 */
import type pg from 'pg';
import { lockRows, recoverInDoubt, type Transaction, twoPhaseCommit } from 'pgsight';
import { HttpError, invalid, MAX_AMOUNT, positiveInteger } from './transfers.ts';

export interface InterledgerRequest {
  from: number;
  to: number;
  amount: number;
  direction: 'a_to_b' | 'b_to_a';
}

export function parseInterledger(body: unknown): InterledgerRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw invalid({ body: 'must be a JSON object' });
  const { from, to, amount, direction = 'a_to_b' } = body as Record<string, unknown>;
  const fields: Record<string, string> = {};
  if (!positiveInteger(from)) fields.from = 'must be an account id (a positive integer)';
  if (!positiveInteger(to)) fields.to = 'must be an account id (a positive integer)';
  if (!positiveInteger(amount, MAX_AMOUNT))
    fields.amount = `must be a whole number of minor units, 1 to ${MAX_AMOUNT}`;
  if (direction !== 'a_to_b' && direction !== 'b_to_a') fields.direction = 'must be "a_to_b" or "b_to_a"';
  if (Object.keys(fields).length > 0) throw invalid(fields);
  return { from, to, amount, direction } as InterledgerRequest;
}

/** The leg table in each ledger: one row per side of an inter-ledger transfer. */
export async function migrateLegs(pool: pg.Pool): Promise<void> {
  await pool.query(`
    CREATE TABLE IF NOT EXISTS interledger_legs (
      global_id  text NOT NULL,
      account_id bigint NOT NULL REFERENCES accounts (id),
      amount     bigint NOT NULL CHECK (amount <> 0),
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (global_id, account_id)
    )`);
}

export function interledgerTransfer(a: pg.Pool, b: pg.Pool, request: InterledgerRequest) {
  const debitA = request.direction === 'a_to_b';
  const [accountA, accountB] = debitA ? [request.from, request.to] : [request.to, request.from];
  const leg = async (
    tx: Transaction,
    globalId: string,
    account: number,
    delta: number,
    ledger: 'a' | 'b',
  ) => {
    const [row] = await lockRows<{ id: string; balance: string }>(tx, 'accounts', [account]);
    if (!row) throw new HttpError(404, { error: 'account not found', ledger, accounts: [account] });
    if (delta < 0 && BigInt(row.balance) < BigInt(-delta))
      throw new HttpError(422, { error: 'insufficient funds', ledger, account, amount: -delta });
    await tx.query('UPDATE accounts SET balance = balance + $2 WHERE id = $1', [account, delta]);
    await tx.query('INSERT INTO interledger_legs (global_id, account_id, amount) VALUES ($1, $2, $3)', [
      globalId,
      account,
      delta,
    ]);
  };
  return twoPhaseCommit({
    coordinator: a,
    participants: { a, b },
    fn: async (tx, { globalId }) => {
      // A first, then B, whatever the direction.
      await leg(tx.a, globalId, accountA, debitA ? -request.amount : request.amount, 'a');
      await leg(tx.b, globalId, accountB, debitA ? request.amount : -request.amount, 'b');
      return { id: globalId, ...request };
    },
    options: { name: 'interledger_transfer' },
  });
}

/** Start-up and periodic recovery of inter-ledger transfers a crash left prepared. */
export function startRecovery(a: pg.Pool, b: pg.Pool, onError: (error: unknown) => void): () => void {
  const run = () => recoverInDoubt({ coordinator: a, participants: { a, b } }).catch(onError);
  void run();
  const timer = setInterval(run, 30_000).unref();
  return () => clearInterval(timer);
}
