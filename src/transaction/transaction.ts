/**
 * `transaction(db, fn, options)`: BEGIN (with isolation level and access mode in the statement), run `fn`
 * with a client bound to the transaction, COMMIT on success, ROLLBACK on any throw. Nested calls become
 * savepoints; the outermost call re-runs on retryable SQLSTATEs with exponential backoff and full jitter
 * (https://www.postgresql.org/docs/current/mvcc-serialization-failure-handling.html: retry the whole
 * transaction, never part of it).
 *
 *   transaction(pool, fn) ─ attempt 1: connect, BEGIN, fn(tx), COMMIT ─▶ afterCommit hooks
 *                          └ 40001/40P01: ROLLBACK, release, wait, attempt 2 ... until maxAttempts
 *     └ transaction(pool | tx, inner) ─ SAVEPOINT s, inner(tx'), RELEASE s  (throw: ROLLBACK TO s, rethrow)
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { context, isSpanContextValid, type Span, trace } from '@opentelemetry/api';
import type pg from 'pg';
import { PgsightError } from '../errors.js';
import { classifySqlState, sqlStateOf } from '../instrumentation/sqlstate.js';
import { pgsightLogger } from '../log/pgsight-logger.js';
import { backoffDelayMs, type ResolvedOptions, resolveOptions, type TransactionOptions } from './options.js';
import {
  NO_SPAN,
  recordEnd,
  recordRetry,
  recordSavepointRollback,
  startTransactionSpan,
  type TransactionInfo,
  type TransactionOutcome,
  transactionFields,
} from './telemetry.js';
import { captureOrigin, type Origin, Watchdog, watchdogEnabled } from './watchdog.js';

type Client = pg.ClientBase & { release?: (err?: Error | boolean) => void; database?: string };
/** What `transaction()` accepts: a pool, a client, or a running transaction (which then nests). */
export type Db = pg.Pool | pg.ClientBase | Transaction;
type Hook = () => unknown;

const store = new AsyncLocalStorage<Transaction>();
/** Marks a client while a pgsight transaction runs on it, so `transaction(client, ...)` nests. */
const ACTIVE = Symbol.for('pgsight.transaction');
let savepointCounter = 0;

/** The client a transaction hands to its function. `query` is the client's, bound and tracked. */
export class Transaction {
  /** The pg client the transaction runs on. Queries sent on it directly belong to the transaction too. */
  readonly client: Client;
  readonly name: string;
  /** 0 for the outermost transaction, 1 for a savepoint inside it, and so on. */
  readonly depth: number;
  /** The outermost transaction's attempt, from 1. */
  readonly attempt: number;
  /** @internal */
  readonly db: unknown;
  /** @internal */
  readonly span: Span | undefined;
  /** @internal created on the first hook: most transactions have none */
  afterCommitHooks: Hook[] | undefined;
  /** @internal */ afterRollbackHooks: Hook[] | undefined;
  /** @internal set by the outermost transaction once it exists (it is the watchdog's subject) */
  watchdog: Watchdog | undefined;
  /** @internal */ readonly signal: AbortSignal | undefined;

  constructor(init: {
    client: Client;
    name: string;
    depth: number;
    attempt: number;
    db: unknown;
    span: Span | undefined;
    watchdog: Watchdog | undefined;
    signal: AbortSignal | undefined;
  }) {
    this.client = init.client;
    this.name = init.name;
    this.depth = init.depth;
    this.attempt = init.attempt;
    this.db = init.db;
    this.span = init.span;
    this.watchdog = init.watchdog;
    this.signal = init.signal;
  }

  /** pg's `query`, on this transaction's client. After an abort, nothing more is sent. */
  declare readonly query: pg.ClientBase['query'];

  /** @internal the `db.*` fields of the watchdog's records */
  watchdogFields(): Record<string, unknown> {
    return transactionFields(
      { name: this.name, isolationLevel: undefined, namespace: this.client.database },
      this.attempt,
    );
  }

  /** @internal `transaction(tx, fn)` nests in `tx`: read like a marked client's mark (see parentFor). */
  get [ACTIVE](): Transaction {
    return this;
  }

  /** Run `hook` once the outermost transaction has committed (once, whatever the retries). */
  afterCommit(hook: Hook): void {
    this.afterCommitHooks ??= [];
    this.afterCommitHooks.push(hook);
  }

  /** Run `hook` once the outermost transaction has finally rolled back (not after retried attempts). */
  afterRollback(hook: Hook): void {
    this.afterRollbackHooks ??= [];
    this.afterRollbackHooks.push(hook);
  }
}

// A prototype method rather than a per-instance closure: one less allocation per transaction.
Object.defineProperty(Transaction.prototype, 'query', {
  // `arguments` forwarded with apply: no rest array per query (V8 does not materialize it for apply).
  value: function query(this: Transaction) {
    if (this.signal?.aborted) return Promise.reject(abortError(this.signal));
    const client = this.client as unknown as { query: (...a: unknown[]) => unknown };
    const watchdog = this.watchdog;
    if (watchdog === undefined) return client.query.apply(client, arguments as never);
    // The watchdog sees a query out on the client itself; it only counts statements.
    if (watchdog.observable) {
      watchdog.queries++;
      return client.query.apply(client, arguments as never);
    }
    watchdog.queryStarted();
    const args = Array.from(arguments) as unknown[];
    const last = args.length - 1;
    if (typeof args[last] === 'function') {
      const callback = args[last] as (...a: unknown[]) => unknown;
      args[last] = (...a: unknown[]) => {
        watchdog.queryEnded();
        return callback(...a);
      };
      return client.query(...args);
    }
    const result = client.query(...args) as Promise<unknown>;
    result.then(watchdog.ended, watchdog.ended);
    return result;
  },
  writable: true,
  configurable: true,
});

/** The innermost transaction running in this async context, or undefined. */
export function getCurrentTransaction(): Transaction | undefined {
  return store.getStore();
}

/** The innermost transaction running in this async context; throws PGSIGHT_ERR_TX_NONE outside one. */
export function currentTransaction(): Transaction {
  const tx = store.getStore();
  if (!tx) throw new PgsightError('PGSIGHT_ERR_TX_NONE', 'no transaction is running in this async context');
  return tx;
}

function abortError(signal: AbortSignal): PgsightError {
  return new PgsightError('PGSIGHT_ERR_TX_ABORTED', 'the transaction was aborted and rolled back', {
    cause: signal.reason,
  });
}

const isPool = (db: unknown): db is pg.Pool =>
  typeof (db as pg.Pool).connect === 'function' && typeof (db as pg.Pool).totalCount === 'number';

/** A connection loss rather than an answer from the server (which would carry a SQLSTATE). */
/** @internal no SQLSTATE (the socket closed) or a connection-class one. */
export function isConnectionLoss(error: unknown): boolean {
  const code = sqlStateOf(error);
  return code === undefined || classifySqlState(code) === 'connection';
}

async function runHooks(hooks: Hook[], kind: string, name: string): Promise<void> {
  for (const hook of hooks) {
    try {
      await hook();
    } catch (error) {
      pgsightLogger().error(
        {
          event: { action: `db.transaction.${kind}_hook_failed`, dataset: 'pgsight.db', kind: 'event' },
          db: { transaction: { name } },
          error: {
            type: (error as Error)?.constructor?.name,
            message: (error as Error)?.message,
            stack_trace: (error as Error)?.stack,
          },
        },
        `${kind} hook of transaction ${name} failed`,
      );
    }
  }
}

function validate(db: unknown, fn: unknown): void {
  // A pool, a client or a Transaction: each has `query`.
  const badDb = db === null || typeof db !== 'object' || typeof (db as pg.Pool).query !== 'function';
  if (!badDb && typeof fn === 'function') return;
  const problems: string[] = [];
  if (badDb) problems.push('db must be a pg Pool, a pg Client, or a running transaction');
  if (typeof fn !== 'function') problems.push('fn must be a function');
  throw new PgsightError('PGSIGHT_ERR_ARGUMENT_INVALID', `transaction(): ${problems.join('; ')}`, {
    details: problems,
  });
}

/** The transaction `db` should nest in, if any. */
function parentFor(db: Db): Transaction | undefined {
  // A marked client or pool holds its transaction; a Transaction answers with itself.
  const active = (db as unknown as Record<symbol, Transaction | undefined>)[ACTIVE];
  if (active) return active;
  const current = store.getStore();
  if (current && (current.db === db || current.client === db)) return current;
  return undefined;
}

export function transaction<T>(
  db: Db,
  fn: (tx: Transaction) => T | Promise<T>,
  options?: TransactionOptions,
): Promise<T> {
  return startTransaction(db, fn, options, transaction, fn);
}

/**
 * `transaction()` for pgsight's own wrappers (the decorator): `calledFrom` is the function the app called,
 * so the watchdog's recorded origin is the app's call site, not the wrapper's; `site` is the function that
 * identifies the call site for the origin cache (the decorated method).
 * @internal
 */
export function startTransaction<T>(
  db: Db,
  fn: (tx: Transaction) => T | Promise<T>,
  options: TransactionOptions | undefined,
  calledFrom: (...args: never[]) => unknown,
  site: unknown,
): Promise<T> {
  // Not `async`: every await layer costs a few microtask turns per transaction (bench/transaction.mjs).
  // Bad arguments still surface as a rejected promise, never as a synchronous throw.
  try {
    validate(db, fn);
    const opts = resolveOptions(options);
    if (opts.signal?.aborted) throw abortError(opts.signal);
    const parent = parentFor(db);
    if (parent) return runSavepoint(parent, fn, opts);
    // The opening location is for the watchdog's records only: nothing to capture when it is off.
    const origin = watchdogEnabled() ? captureOrigin(calledFrom, site, options?.name) : undefined;
    return runOutermost(db as pg.Pool | Client, fn, opts, origin);
  } catch (error) {
    return Promise.reject(error);
  }
}

async function runSavepoint<T>(
  parent: Transaction,
  fn: (tx: Transaction) => T | Promise<T>,
  opts: ResolvedOptions,
): Promise<T> {
  const savepoint = `pgsight_sp_${++savepointCounter}`;
  await parent.query(`SAVEPOINT ${savepoint}`);
  const tx = new Transaction({
    client: parent.client,
    name: opts.name === 'transaction' ? parent.name : opts.name,
    depth: parent.depth + 1,
    attempt: parent.attempt,
    db: parent.db,
    span: parent.span,
    watchdog: parent.watchdog,
    signal: opts.signal ?? parent.signal,
  });
  let result: T;
  try {
    result = await store.run(tx, fn, tx);
    if (tx.signal?.aborted) throw abortError(tx.signal);
  } catch (error) {
    try {
      await parent.client.query(`ROLLBACK TO SAVEPOINT ${savepoint}`);
      recordSavepointRollback(parent.span, savepoint, error);
    } catch (rollbackError) {
      attachRollbackError(error, rollbackError);
    }
    // The savepoint's work did not happen: its hooks are dropped with it.
    throw error;
  }
  await parent.query(`RELEASE SAVEPOINT ${savepoint}`);
  for (const hook of tx.afterCommitHooks ?? []) parent.afterCommit(hook);
  for (const hook of tx.afterRollbackHooks ?? []) parent.afterRollback(hook);
  return result;
}

function attachRollbackError(error: unknown, rollbackError: unknown): void {
  if (error !== null && typeof error === 'object') {
    Object.defineProperty(error, 'rollbackError', {
      value: rollbackError,
      enumerable: false,
      configurable: true,
    });
  }
}

/**
 * @internal `pool.connect()` with `onError` attached the moment the pool hands the client over. pg-pool takes
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

/** Set on a client whose connection failed during a transaction: it is destroyed, not returned to the pool. */
const BROKEN = Symbol('pgsight.broken');
type Leased = Client & { [BROKEN]?: boolean; [ACTIVE]?: Transaction | undefined };

/**
 * The error listener of a client inside a transaction. A checked-out client has no error listener of the
 * pool's: without one, a backend terminated mid-transaction would crash the app with an unhandled 'error'
 * event. One shared function (the client is `this`), not a closure per attempt.
 */
function markBroken(this: Leased): void {
  this[BROKEN] = true;
}

/** A pooled client for the attempt, or the client `transaction()` was given, with `markBroken` attached. */
function lease(db: pg.Pool | Client, pooled: boolean): Leased | Promise<Leased> {
  if (pooled) return connectGuarded(db as pg.Pool, markBroken) as unknown as Promise<Leased>;
  // A client of the app's own outlives its transactions: a mark from an earlier one is stale.
  const client = db as Leased;
  client[BROKEN] = false;
  client.on('error', markBroken);
  return client;
}

/**
 * One outermost transaction, across its attempts: what every attempt needs, in one object (an async
 * function's every argument and local is kept in its frame while it waits). It is the transaction's
 * TransactionInfo too (name, isolation level, namespace) for spans and records.
 */
interface Run<T> extends TransactionInfo {
  db: pg.Pool | Client;
  pooled: boolean;
  fn: (tx: Transaction) => T | Promise<T>;
  opts: ResolvedOptions;
  /** Undefined when the watchdog is off. */
  origin: Origin | undefined;
  span: Span;
  startedAt: number;
  /** Each failed attempt's SQLSTATE; created by the first failure. */
  sqlStates: string[] | undefined;
}

function runOutermost<T>(
  db: pg.Pool | Client,
  fn: (tx: Transaction) => T | Promise<T>,
  opts: ResolvedOptions,
  origin: Origin | undefined,
): Promise<T> {
  const pooled = isPool(db);
  const run: Run<T> = {
    name: opts.name,
    isolationLevel: opts.isolationLevel,
    namespace: pooled
      ? (db as unknown as { options?: { database?: string } }).options?.database
      : (db as Client).database,
    db,
    pooled,
    fn,
    opts,
    origin,
    span: NO_SPAN,
    startedAt: performance.now(),
    sqlStates: undefined,
  };
  const span = startTransactionSpan(run);
  run.span = span;
  // Everything from here runs in the span's context, so BEGIN, the body's queries and COMMIT are its children.
  // With no tracer provider (or a span with an invalid context) there is nothing to put in the context.
  if (span === NO_SPAN || !isSpanContextValid(span.spanContext())) return attempts(run);
  return context.with(trace.setSpan(context.active(), span), () => attempts(run));
}

type Phase = 'begin' | 'body' | 'commit';

async function attempts<T>(run: Run<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const client = await lease(run.db, run.pooled);
    const tx = open(run, client, attempt);
    let phase: Phase = 'begin';
    try {
      await tx.query(run.opts.beginSql);
      phase = 'body';
      const result = await store.run(tx, run.fn, tx);
      if (run.opts.signal?.aborted) throw abortError(run.opts.signal);
      phase = 'commit';
      await client.query('COMMIT');
      // Committed; a connection error seen meanwhile (the socket closing after COMMIT's answer) still
      // means the client is not to be reused.
      finish(run, tx, client[BROKEN] === true);
      recordEnd(run, run.span, 'committed', attempt, run.startedAt, run.sqlStates?.at(-1), undefined);
      if (tx.afterCommitHooks) await runHooks(tx.afterCommitHooks, 'after_commit', run.name);
      return result;
    } catch (error) {
      // Throws, unless the transaction is to be run again.
      await failed(run, tx, phase, error);
    }
  }
}

/** The attempt's Transaction on a leased client, watched when the watchdog is on. */
function open<T>(run: Run<T>, client: Leased, attempt: number): Transaction {
  if (run.namespace === undefined) run.namespace = client.database;
  const tx = new Transaction({
    client,
    name: run.name,
    depth: 0,
    attempt,
    db: run.db,
    span: run.span,
    watchdog: undefined,
    signal: run.opts.signal,
  });
  if (run.origin) tx.watchdog = new Watchdog(client, tx, run.origin);
  client[ACTIVE] = tx;
  return tx;
}

/**
 * After a failed attempt: roll back, release, and either return (the transaction runs again, after its
 * backoff) or throw what the caller gets.
 */
async function failed<T>(run: Run<T>, tx: Transaction, phase: Phase, error: unknown): Promise<void> {
  const opts = run.opts;
  const span = run.span;
  const info: TransactionInfo = run;
  const client = tx.client as Leased;
  const attempt = tx.attempt;
  const code = sqlStateOf(error);
  run.sqlStates ??= [];
  const sqlStates = run.sqlStates;
  if (code) sqlStates.push(code);
  if (phase === 'commit' && isConnectionLoss(error)) {
    finish(run, tx, true);
    const unknown = new PgsightError(
      'PGSIGHT_ERR_TX_OUTCOME_UNKNOWN',
      `transaction ${info.name}: the connection was lost after COMMIT was sent; it may or may not have committed`,
      { cause: error },
    );
    recordEnd(info, span, 'unknown', attempt, run.startedAt, code, error);
    throw unknown;
  }
  // A failed COMMIT has already ended the transaction on the server; anything else needs a ROLLBACK.
  if (phase !== 'commit' && !client[BROKEN]) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackError) {
      client[BROKEN] = true;
      attachRollbackError(error, rollbackError);
    }
  }
  finish(run, tx, client[BROKEN] === true || isConnectionLoss(error));
  const retryable = code !== undefined && opts.retryOn.has(code) && !opts.signal?.aborted;
  if (retryable && attempt < opts.maxAttempts) {
    const delayMs = backoffDelayMs(attempt, opts.baseMs, opts.maxMs);
    recordRetry(info, span, attempt, code, delayMs);
    if (delayMs > 0)
      await sleep(delayMs, undefined, opts.signal ? { signal: opts.signal } : undefined).catch(() => {});
    if (opts.signal?.aborted) {
      recordEnd(info, span, 'rolled_back', attempt, run.startedAt, code, error);
      throw abortError(opts.signal);
    }
    return;
  }
  const outcome: TransactionOutcome = retryable ? 'retries_exhausted' : 'rolled_back';
  recordEnd(info, span, outcome, attempt, run.startedAt, code, error);
  if (tx.afterRollbackHooks) await runHooks(tx.afterRollbackHooks, 'after_rollback', info.name);
  if (retryable) {
    throw new PgsightError(
      'PGSIGHT_ERR_TX_RETRIES_EXHAUSTED',
      `transaction ${info.name} failed on all ${attempt} attempts (${sqlStates.join(', ')})`,
      { cause: error, details: [...sqlStates] },
    );
  }
  throw error;
}

/** Stop watching, unmark, and give the client back (destroyed when it cannot be trusted). */
function finish<T>(run: Run<T>, tx: Transaction, destroy: boolean): void {
  const client = tx.client as Leased;
  tx.watchdog?.stop();
  client[ACTIVE] = undefined;
  client.removeListener('error', markBroken);
  // A destroyed client is ended by the pool with no error listener of its own: a FATAL arriving meanwhile
  // (a backend terminated while the socket closes) would be an unhandled 'error' event and end the app.
  if (destroy) client.on('error', ignoreLateError);
  // The app's own client stays the app's.
  if (run.pooled) client.release?.(destroy ? new Error('pgsight: destroyed') : undefined);
}

/** @internal errors of a client being thrown away: nothing left to tell anyone. */
export function ignoreLateError(): void {}

/**
 * For `pgsight/testing`: open a transaction on one of the pool's clients that every use of the pool joins
 * (`transaction(pool)` nests as a savepoint, `pool.query` and `pool.connect` get that client), and that
 * `end()` rolls back. Not for production code.
 */
export async function beginAmbientTransaction(
  pool: pg.Pool,
): Promise<{ transaction: Transaction; end: () => Promise<void> }> {
  const client = (await pool.connect()) as Client;
  await client.query('BEGIN');
  const tx = new Transaction({
    client,
    name: 'test',
    depth: 0,
    attempt: 1,
    db: pool,
    span: undefined,
    watchdog: undefined,
    signal: undefined,
  });
  const owned = pool as unknown as Record<string | symbol, unknown>;
  const saved = { connect: owned.connect, query: owned.query };
  owned[ACTIVE] = tx;
  // `transaction(client)` on the client the pool hands out nests too.
  (client as Leased)[ACTIVE] = tx;
  const borrowed = borrowedClient(client);
  owned.connect = (callback?: (err: unknown, c?: unknown, done?: () => void) => void) => {
    if (callback) {
      callback(undefined, borrowed, () => {});
      return undefined;
    }
    return Promise.resolve(borrowed);
  };
  owned.query = (...args: unknown[]) => (client.query as (...a: unknown[]) => unknown)(...args);
  return {
    transaction: tx,
    end: async () => {
      owned.connect = saved.connect;
      owned.query = saved.query;
      owned[ACTIVE] = undefined;
      (client as Leased)[ACTIVE] = undefined;
      let broken = false;
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      client.release?.(broken ? new Error('pgsight: test transaction could not roll back') : undefined);
    },
  };
}

/**
 * The test transaction's client as code under test sees it after `pool.connect()`: the same client (pg keeps
 * a query's state on the object it runs on, so every method runs on the real one), except that `release()`
 * keeps it: code under test releasing its client must not end the test's transaction.
 */
function borrowedClient(client: Client): Client {
  const keep = () => {};
  return new Proxy(client, {
    get(target, key) {
      if (key === 'release') return keep;
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
