/**
 * Request-scoped log context: fields every record logged inside carries, across awaits, timers and fan-out,
 * by any logger `createLogger` made (and by pgsight's own records). AsyncLocalStorage holds one frozen
 * object per scope; binding more fields makes a new object, so a scope never changes under a sibling.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export type LogFields = Readonly<Record<string, unknown>>;

const store = new AsyncLocalStorage<LogFields>();

/** Run `fn` with `fields` added to the current context (inner fields win). Returns what `fn` returns. */
export function withLogContext<T>(fields: Record<string, unknown>, fn: () => T): T {
  const parent = store.getStore();
  return store.run(Object.freeze(parent ? { ...parent, ...fields } : { ...fields }), fn);
}

/** Add fields to the current context, for the rest of this async flow. */
export function bindLogContext(fields: Record<string, unknown>): void {
  const parent = store.getStore();
  store.enterWith(Object.freeze(parent ? { ...parent, ...fields } : { ...fields }));
}

/** The current context's fields (a frozen object; empty outside any context). */
export function getLogContext(): LogFields {
  return store.getStore() ?? EMPTY;
}

const EMPTY: LogFields = Object.freeze({});

/** @internal the raw store, for the logger hook (undefined outside any context). */
export const currentLogContext = (): LogFields | undefined => store.getStore();
