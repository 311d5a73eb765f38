/**
 * `timed(name, fn)` and the `@timed(name)` method decorator: log `operation completed` / `operation failed`
 * with `event.duration` (ns), the outcome and the error type. The value is returned unchanged and the error
 * rethrown unchanged; sync functions stay sync. `thresholdMs` logs only calls at least that slow (failures
 * always).
 */
import type { Logger } from 'pino';
import { errorFields } from '../ecs/fields.js';
import { pgsightLogger } from '../ecs/pgsight-logger.js';

export interface TimedOptions {
  /** Log only calls taking at least this long (ms); failures are always logged. @default 0 */
  thresholdMs?: number;
  /** @default pgsight's logger */
  logger?: Logger;
}

function record(
  name: string,
  startedAt: number,
  error: unknown,
  failed: boolean,
  options: TimedOptions,
): void {
  const ms = performance.now() - startedAt;
  if (!failed && ms < (options.thresholdMs ?? 0)) return;
  const logger = options.logger ?? pgsightLogger();
  const fields = {
    event: { action: name, duration: Math.round(ms * 1e6), outcome: failed ? 'failure' : 'success' },
    ...(failed ? { error: errorFields(error) } : {}),
  };
  if (failed) logger.error(fields, 'operation failed');
  else logger.info(fields, 'operation completed');
}

/** Run `fn`, timing and logging it. */
export function timed<T>(name: string, fn: () => T, options?: TimedOptions): T;
/** `@timed(name?, options?)`: the standard (TC39) method decorator form. */
export function timed(
  name?: string,
  options?: TimedOptions,
): <This, Args extends unknown[], R>(
  method: (this: This, ...args: Args) => R,
  context: ClassMethodDecoratorContext<This, (this: This, ...args: Args) => R>,
) => (this: This, ...args: Args) => R;
export function timed(name?: string, fnOrOptions?: unknown, options?: TimedOptions): unknown {
  if (typeof fnOrOptions === 'function')
    return runTimed(name ?? 'operation', fnOrOptions as () => unknown, options ?? {});
  return timedMethod(name, (fnOrOptions as TimedOptions | undefined) ?? {});
}

function runTimed<T>(name: string, fn: () => T, options: TimedOptions): T {
  const startedAt = performance.now();
  let result: T;
  try {
    result = fn();
  } catch (error) {
    record(name, startedAt, error, true, options);
    throw error;
  }
  if (
    result !== null &&
    typeof result === 'object' &&
    typeof (result as { then?: unknown }).then === 'function'
  ) {
    // Chained on the caller's promise: the same value, the same rejection, unchanged.
    return (result as unknown as Promise<unknown>).then(
      (value) => {
        record(name, startedAt, undefined, false, options);
        return value;
      },
      (error: unknown) => {
        record(name, startedAt, error, true, options);
        throw error;
      },
    ) as T;
  }
  record(name, startedAt, undefined, false, options);
  return result;
}

function timedMethod(name?: string, options: TimedOptions = {}) {
  return <This, Args extends unknown[], R>(
    method: (this: This, ...args: Args) => R,
    context: ClassMethodDecoratorContext<This, (this: This, ...args: Args) => R>,
  ) => {
    const label = name ?? String(context.name);
    return function (this: This, ...args: Args): R {
      return runTimed(label, () => method.apply(this, args), options);
    };
  };
}
