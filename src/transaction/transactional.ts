/**
 * `@transactional(options?)`: a standard (TC39) method decorator that runs the method in `transaction()`.
 * The database comes from the instance: its `pool` property by convention, or `options.db(instance)`.
 * Inside, `currentTransaction()` gives the method the transaction's client.
 */

import type { TransactionOptions } from './options.js';
import type { Db } from './transaction.js';
import { startTransaction } from './transaction.js';

type AsyncMethod<This, Args extends unknown[], R> = (this: This, ...args: Args) => Promise<R>;

export interface TransactionalOptions<This> extends TransactionOptions {
  /** Where the database comes from. @default (instance) => instance.pool */
  db?: (instance: This) => Db;
}

/** Decorates an async method of a class whose instances have a `pool` (a pg Pool or Client). */
export function transactional(
  options?: TransactionOptions,
): <This extends { pool: Db }, Args extends unknown[], R>(
  method: AsyncMethod<This, Args, R>,
  context: ClassMethodDecoratorContext<This, AsyncMethod<This, Args, R>>,
) => AsyncMethod<This, Args, R>;
/** Decorates an async method; `options.db` picks the database from the instance. */
export function transactional<This>(
  options: TransactionalOptions<This> & { db: (instance: This) => Db },
): <Args extends unknown[], R>(
  method: AsyncMethod<This, Args, R>,
  context: ClassMethodDecoratorContext<This, AsyncMethod<This, Args, R>>,
) => AsyncMethod<This, Args, R>;
export function transactional<This>(options: TransactionalOptions<This> = {}) {
  const { db, ...txOptions } = options;
  const pick = db ?? ((instance: This) => (instance as { pool: Db }).pool);
  return <Args extends unknown[], R>(
    method: AsyncMethod<This, Args, R>,
    context: ClassMethodDecoratorContext<This, AsyncMethod<This, Args, R>>,
  ): AsyncMethod<This, Args, R> => {
    const name = txOptions.name ?? String(context.name);
    const resolved = { ...txOptions, name };
    const decorated = function (this: This, ...args: Args): Promise<R> {
      return startTransaction(pick(this), () => method.apply(this, args), resolved, decorated, method);
    };
    return decorated;
  };
}
