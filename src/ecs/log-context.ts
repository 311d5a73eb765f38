/**
 * Request-scoped log context: fields every record logged inside carries, across awaits, timers and fan-out,
 * by any logger `createLogger` made (and by pgsight's own records). AsyncLocalStorage holds one scope per
 * `withLogContext`: its fields (a copy, typed read-only; not frozen, which costs on every request) and the
 * child loggers made for it (see create-logger.ts). Binding more fields makes a new scope, so a scope never
 * changes under a sibling.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export type LogFields = Readonly<Record<string, unknown>>;

/** @internal a scope: the fields, and the child loggers bound to them (one fast slot, then a map). */
export interface LogScope {
  readonly fields: LogFields;
  logger: object | undefined;
  child: object | undefined;
  others: Map<object, object> | undefined;
  /** The request's or transaction's query counts (query-tally.ts), shared by the scopes opened inside it. */
  tally: object | undefined;
}

const store = new AsyncLocalStorage<LogScope>();

function scope(fields: Record<string, unknown>): LogScope {
  const parent = store.getStore();
  return {
    fields: parent ? { ...parent.fields, ...fields } : { ...fields },
    logger: undefined,
    child: undefined,
    others: undefined,
    tally: parent?.tally,
  };
}

/** Run `fn` with `fields` added to the current context (inner fields win). Returns what `fn` returns. */
export function withLogContext<T>(fields: Record<string, unknown>, fn: () => T): T {
  return store.run(scope(fields), fn);
}

/** Add fields to the current context, for the rest of this async flow. */
export function bindLogContext(fields: Record<string, unknown>): void {
  store.enterWith(scope(fields));
}

/** The current context's fields (read-only; empty outside any context). */
export function getLogContext(): LogFields {
  return store.getStore()?.fields ?? EMPTY;
}

const EMPTY: LogFields = Object.freeze({});

/** @internal Run `fn` in a scope with the current fields and `tally` as its query counts (query-tally.ts). */
export function withTally<T>(tally: object, fn: () => T): T {
  const parent = store.getStore();
  const next: LogScope = {
    fields: parent?.fields ?? EMPTY,
    logger: undefined,
    child: undefined,
    others: undefined,
    tally,
  };
  return store.run(next, fn);
}

/** @internal the current scope (undefined outside any context). */
export const currentLogScope = (): LogScope | undefined => store.getStore();

/** @internal the current fields, for pgsight's own logger (undefined outside any context). */
export const currentLogContext = (): LogFields | undefined => store.getStore()?.fields;

/**
 * @internal Run `fn` with `scope` as the current log context: pgsight's records written from a socket event
 * or a timer (a query's end, the watchdog's sweep) carry the context of the flow that caused them. Switches
 * only when it differs (AsyncLocalStorage.run costs about half a microsecond).
 */
export function inLogScope<T>(scope: LogScope | undefined, fn: () => T): T {
  return store.getStore() === scope ? fn() : store.run(scope as LogScope, fn);
}
