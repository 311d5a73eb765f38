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

/** Node's `--unhandled-rejections` mode (`throw` unless the command line or NODE_OPTIONS says otherwise). */
function unhandledRejectionsMode(): string {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  let mode = 'throw';
  for (const flag of flags) {
    const match = /^--unhandled-rejections=(.+)$/.exec(flag);
    if (match) mode = match[1] as string;
  }
  return mode;
}

/**
 * Log uncaught exceptions and unhandled rejections with full ECS fields. Nothing is swallowed and nothing of
 * Node's own report changes (its first frame, its message, the exit code): both are seen through
 * 'uncaughtExceptionMonitor', which observes without handling. In Node's default mode (`throw`, and
 * `strict`) an unhandled rejection reaches that monitor with origin `unhandledRejection`. A listener on
 * 'unhandledRejection' would count as handling it, and re-throwing from there would move Node's report to
 * pgsight's line; one is added only in the modes where Node does not throw (`warn`, `none`, ...), to log.
 * Returns a function that removes the hooks.
 */
export function installProcessErrorHooks(logger: Logger = pgsightLogger()): () => void {
  if (installed) return installed;
  const logged = new WeakSet<object>();
  // `fatal` when the process dies of it; a rejection Node only warns about is an error.
  const monitor = (error: unknown, origin: string, level: 'fatal' | 'error' = 'fatal') => {
    if (error !== null && typeof error === 'object') {
      if (logged.has(error)) return;
      logged.add(error);
    }
    logger[level](
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
  const throws = ['throw', 'strict'].includes(unhandledRejectionsMode());
  const onRejection = (reason: unknown) => monitor(reason, 'unhandledRejection', 'error');
  process.on('uncaughtExceptionMonitor', monitor);
  if (!throws) process.on('unhandledRejection', onRejection);
  installed = () => {
    process.off('uncaughtExceptionMonitor', monitor);
    process.off('unhandledRejection', onRejection);
    installed = undefined;
  };
  return installed;
}
