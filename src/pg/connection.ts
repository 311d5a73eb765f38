/**
 * Connection helpers: a pool checkout that cannot lose an error, and what counts as a lost connection.
 */
import type pg from 'pg';
import { classifySqlState, sqlStateOf } from './sqlstate.js';

/** A connection loss rather than an answer from the server: no SQLSTATE (the socket closed) or a connection-class one. */
export function isConnectionLoss(error: unknown): boolean {
  const code = sqlStateOf(error);
  return code === undefined || classifySqlState(code) === 'connection';
}

/**
 * `pool.connect()` with `onError` attached the moment the pool hands the client over. pg-pool takes
 * its own error listener off before that, and the promise form resumes the caller a microtask later: a
 * FATAL that arrives in the same socket read (a backend terminated just as it became ready) would be an
 * unhandled 'error' event in between, and end the app. The callback form runs synchronously.
 */
export function connectGuarded(pool: pg.Pool, onError: (error: unknown) => void): Promise<pg.PoolClient> {
  return new Promise((resolve, reject) => {
    pool.connect((error, client) => {
      if (error || !client) return reject(error);
      client.on('error', onError);
      resolve(client);
    });
  });
}

/** The error listener of a client being thrown away: nothing left to tell anyone. */
export function ignoreLateError(): void {}
