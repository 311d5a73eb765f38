/**
 * The client an attempt runs on: leased from the pool (or the app's own client), watched for a connection
 * that breaks mid-transaction, and given back afterwards, or destroyed when it cannot be trusted.
 */
import type pg from 'pg';
import { connectGuarded, ignoreLateError } from '../pg/connection.js';
import { ACTIVE, type Client, type Transaction } from './handle.js';

/** Set on a client whose connection failed during a transaction: it is destroyed, not returned to the pool. */
export const BROKEN = Symbol('pgsight.broken');
export type Leased = Client & { [BROKEN]?: boolean; [ACTIVE]?: Transaction | undefined };

/**
 * The error listener of a client inside a transaction. A checked-out client has no error listener of the
 * pool's: without one, a backend terminated mid-transaction would crash the app with an unhandled 'error'
 * event. One shared function (the client is `this`), not a closure per attempt.
 */
function markBroken(this: Leased): void {
  this[BROKEN] = true;
}

/** A pooled client for the attempt, or the client `transaction()` was given, with `markBroken` attached. */
export function lease(db: pg.Pool | Client, pooled: boolean): Leased | Promise<Leased> {
  if (pooled) return connectGuarded(db as pg.Pool, markBroken) as unknown as Promise<Leased>;
  // A client of the app's own outlives its transactions: a mark from an earlier one is stale.
  const client = db as Leased;
  client[BROKEN] = false;
  client.on('error', markBroken);
  return client;
}

/** Stop watching, unmark, and give the client back (destroyed when it cannot be trusted). */
export function giveBack(tx: Transaction, pooled: boolean, destroy: boolean): void {
  const client = tx.client as Leased;
  tx.watchdog?.stop();
  client[ACTIVE] = undefined;
  client.removeListener('error', markBroken);
  // A destroyed client is ended by the pool with no error listener of its own: a FATAL arriving meanwhile
  // (a backend terminated while the socket closes) would be an unhandled 'error' event and end the app.
  if (destroy) client.on('error', ignoreLateError);
  // The app's own client stays the app's.
  if (pooled) client.release?.(destroy ? new Error('pgsight: destroyed') : undefined);
}
