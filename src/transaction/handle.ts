/**
 * The transaction handle: the `Transaction` a transaction hands to its function (its client, name, depth,
 * attempt, hooks), and where the running one is found (`currentTransaction()`, the nesting mark on a client).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Span } from '@opentelemetry/api';
import type pg from 'pg';
import { PgsightError } from '../errors.js';
import { namespaceOf } from '../pg/namespace.js';
import { transactionFields } from './telemetry.js';
import type { Watchdog } from './watchdog.js';

export type Client = pg.ClientBase & { release?: (err?: Error | boolean) => void; database?: string };
/** What `transaction()` accepts: a pool, a client, or a running transaction (which then nests). */
export type Db = pg.Pool | pg.ClientBase | Transaction;
export type Hook = () => unknown;

/** The innermost transaction of each async context: `currentTransaction()`, and nesting without passing `tx`. */
export const store = new AsyncLocalStorage<Transaction>();
/** Marks a client while a pgsight transaction runs on it, so `transaction(client, ...)` nests. */
export const ACTIVE = Symbol.for('pgsight.transaction');

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
  /**
   * @internal the SQLSTATEs on which the outermost transaction runs again after this attempt (undefined on
   * its last attempt): a query failing with one is recorded as expected contention, not as an error.
   */
  retriedOn: ReadonlySet<string> | undefined;

  /** @internal transactions are opened by `transaction()`, not constructed */
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
    this.retriedOn = undefined;
  }

  /** pg's `query`, on this transaction's client. After an abort, nothing more is sent. */
  declare readonly query: pg.ClientBase['query'];

  /** @internal the `db.*` fields of the watchdog's records */
  watchdogFields(): Record<string, unknown> {
    return transactionFields(
      { name: this.name, isolationLevel: undefined, namespace: namespaceOf(this.client) },
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

/** @internal what an aborted transaction rejects with. */
export function abortError(signal: AbortSignal): PgsightError {
  return new PgsightError('PGSIGHT_ERR_TX_ABORTED', 'the transaction was aborted and rolled back', {
    cause: signal.reason,
  });
}
