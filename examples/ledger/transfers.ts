/**
 * Transfers: the unit of work. One pgsight `transaction()` per transfer, READ COMMITTED, that
 *
 *   1. claims the idempotency key (a concurrent request with the same key waits here, then replays),
 *   2. locks both accounts with `lockRows`, which sorts the ids: every transfer takes its two row locks in
 *      the same order, so two transfers over the same pair queue instead of deadlocking,
 *   3. checks funds, moves the money, records the transfer, stores the key's response, writes an outbox row,
 *   4. commits, and only then publishes the outbox row (`afterCommit`): nothing is published for a rollback.
 *
 * Why ordered row locks rather than SERIALIZABLE: a transfer knows its two rows up front, so locking them in
 * a fixed order is enough for correctness, and contended transfers wait a few milliseconds instead of being
 * aborted and re-run. Retries stay on for 40001 / 40P01 and for a backend terminated mid-transaction (57P01,
 * before COMMIT was sent): pgsight re-runs the whole transaction on a fresh connection and writes a
 * `db.transaction.retry` record, which is how the retry path shows in the logs (the demo terminates a backend
 * on purpose). A connection lost after COMMIT was sent is never re-run (outcome unknown: a 500).
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { lockRows, transaction } from 'pgsight';

/** An answer other than 2xx, with the body the client gets. */
export class HttpError extends Error {
  readonly status: number;
  readonly body: Record<string, unknown>;
  constructor(status: number, body: Record<string, unknown>) {
    super(String(body.error));
    this.status = status;
    this.body = body;
  }
}

export interface TransferRequest {
  from: number;
  to: number;
  amount: number;
}

export interface TransferResult {
  body: { id: number; from: number; to: number; amount: number };
  /** The stored answer to an earlier request with the same idempotency key. */
  replayed: boolean;
}

/** Largest amount or opening balance, in minor units: sums stay exact in JavaScript numbers. */
export const MAX_AMOUNT = 1_000_000_000_000;
const KEY = /^[\x21-\x7e]{1,200}$/;

export const positiveInteger = (v: unknown, max = Number.MAX_SAFE_INTEGER): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v > 0 && v <= max;

export function invalid(fields: Record<string, string>): HttpError {
  return new HttpError(400, { error: 'invalid request', fields });
}

/** An opening balance: `{ "balance": n }`, whole minor units from 0. */
export function parseBalance(body: unknown): number {
  const balance = (body as { balance?: unknown } | undefined)?.balance;
  if (typeof balance !== 'number' || !Number.isSafeInteger(balance) || balance < 0 || balance > MAX_AMOUNT)
    throw invalid({ balance: `must be a whole number of minor units, 0 to ${MAX_AMOUNT}` });
  return balance;
}

export function parseTransfer(body: unknown, key: string | undefined): TransferRequest {
  const fields: Record<string, string> = {};
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw invalid({ body: 'must be a JSON object' });
  const { from, to, amount } = body as Record<string, unknown>;
  if (!positiveInteger(from)) fields.from = 'must be an account id (a positive integer)';
  if (!positiveInteger(to)) fields.to = 'must be an account id (a positive integer)';
  else if (to === from) fields.to = 'must differ from "from"';
  if (!positiveInteger(amount, MAX_AMOUNT))
    fields.amount = `must be a whole number of minor units, 1 to ${MAX_AMOUNT}`;
  if (key !== undefined && !KEY.test(key))
    fields['Idempotency-Key'] = 'must be 1 to 200 visible ASCII characters';
  if (Object.keys(fields).length > 0) throw invalid(fields);
  return { from: from as number, to: to as number, amount: amount as number };
}

export function transfer(
  pool: pg.Pool,
  request: TransferRequest,
  key: string | undefined,
  publish: (outboxId: number) => Promise<void>,
): Promise<TransferResult> {
  const hash = createHash('sha256')
    .update(JSON.stringify([request.from, request.to, request.amount]))
    .digest('hex');
  return transaction(
    pool,
    async (tx) => {
      if (key !== undefined) {
        const claimed = await tx.query(
          'INSERT INTO idempotency_keys (key, request_hash) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING',
          [key, hash],
        );
        if (claimed.rowCount === 0) {
          const { rows } = await tx.query<{ request_hash: string; response: TransferResult['body'] }>(
            'SELECT request_hash, response FROM idempotency_keys WHERE key = $1',
            [key],
          );
          const stored = rows[0];
          if (stored?.request_hash !== hash)
            throw new HttpError(409, {
              error: 'this Idempotency-Key was used with a different request',
              key,
            });
          const { id, from, to, amount } = stored.response;
          return { body: { id, from, to, amount }, replayed: true };
        }
      }
      const accounts = await lockRows<{ id: string; balance: string }>(tx, 'accounts', [
        request.from,
        request.to,
      ]);
      const missing = [request.from, request.to].filter((id) => !accounts.some((a) => Number(a.id) === id));
      if (missing.length > 0) throw new HttpError(404, { error: 'account not found', accounts: missing });
      const from = accounts.find((a) => Number(a.id) === request.from);
      if (BigInt(from?.balance ?? 0) < BigInt(request.amount))
        throw new HttpError(422, {
          error: 'insufficient funds',
          account: request.from,
          amount: request.amount,
        });
      await tx.query('UPDATE accounts SET balance = balance - $2 WHERE id = $1', [
        request.from,
        request.amount,
      ]);
      await tx.query('UPDATE accounts SET balance = balance + $2 WHERE id = $1', [
        request.to,
        request.amount,
      ]);
      const inserted = await tx.query<{ id: string }>(
        'INSERT INTO transfers (from_id, to_id, amount) VALUES ($1, $2, $3) RETURNING id',
        [request.from, request.to, request.amount],
      );
      const body = { id: Number(inserted.rows[0]?.id), ...request };
      if (key !== undefined)
        await tx.query('UPDATE idempotency_keys SET transfer_id = $2, response = $3 WHERE key = $1', [
          key,
          body.id,
          body,
        ]);
      const event = await tx.query<{ id: string }>(
        `INSERT INTO outbox (topic, payload) VALUES ('transfer.created', $1) RETURNING id`,
        [body],
      );
      const outboxId = Number(event.rows[0]?.id);
      tx.afterCommit(() => publish(outboxId));
      return { body, replayed: false };
    },
    { name: 'transfer', retryOn: ['40001', '40P01', '57P01'] },
  );
}
