/**
 * Error logging: ECS `error.*` with the cause chain, the error code and the SQLSTATE; and process-level hooks
 * that log `uncaughtException` / `unhandledRejection` before Node's own behaviour goes on unchanged.
 */
import type { Logger } from 'pino';
import { errorFields } from '../ecs/fields.js';
import { pgsightLogger } from '../ecs/pgsight-logger.js';
import { sqlStateOf } from '../pg/sqlstate.js';

/** Log `err` at error level with ECS `error.*` (and the SQLSTATE as `db.response.status_code` when it has one). */
export function logError(
  err: unknown,
  fields: Record<string, unknown> = {},
  logger: Logger = pgsightLogger(),
): void {
  const sqlState = sqlStateOf(err);
  logger.error(
    { ...fields, error: errorFields(err), ...(sqlState ? { 'db.response.status_code': sqlState } : {}) },
    err instanceof Error ? err.message : String(err),
  );
}

let installed: (() => void) | undefined;

/**
 * Log uncaught exceptions and unhandled rejections with full ECS fields. Nothing is swallowed and exit codes do
 * not change: exceptions are seen through 'uncaughtExceptionMonitor' (which changes nothing), and a rejection
 * nobody else handles is re-thrown, as Node's default `--unhandled-rejections=throw` would have done.
 * Returns a function that removes the hooks.
 */
export function installProcessErrorHooks(logger: Logger = pgsightLogger()): () => void {
  if (installed) return installed;
  const logged = new WeakSet<object>();
  const monitor = (error: unknown, origin: string) => {
    if (error !== null && typeof error === 'object') {
      if (logged.has(error)) return;
      logged.add(error);
    }
    logger.fatal(
      {
        error: errorFields(error),
        event: {
          action:
            origin === 'unhandledRejection' ? 'process.unhandled_rejection' : 'process.uncaught_exception',
          kind: 'event',
        },
      },
      `${origin === 'unhandledRejection' ? 'unhandled rejection' : 'uncaught exception'}: ${error instanceof Error ? error.message : String(error)}`,
    );
    // The process is about to die: write the record now rather than at the transport's pace.
    try {
      logger.flush();
    } catch {
      // nothing more to do
    }
  };
  const onRejection = (reason: unknown) => {
    monitor(reason, 'unhandledRejection');
    // With a listener, Node no longer throws; when ours is the only one, restore that behaviour.
    if (process.listenerCount('unhandledRejection') === 1) {
      process.nextTick(() => {
        throw reason;
      });
    }
  };
  process.on('uncaughtExceptionMonitor', monitor);
  process.on('unhandledRejection', onRejection);
  installed = () => {
    process.off('uncaughtExceptionMonitor', monitor);
    process.off('unhandledRejection', onRejection);
    installed = undefined;
  };
  return installed;
}
