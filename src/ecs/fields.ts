/**
 * Field builders shared by every record pgsight writes: one definition of each shape.
 *   dbEvent()     `event.*` of a database record (https://www.elastic.co/guide/en/ecs/current/ecs-event.html)
 *   errorFields() `error.*` of a thrown value (https://www.elastic.co/guide/en/ecs/current/ecs-error.html)
 */
import { sqlStateOf } from '../pg/sqlstate.js';

/** `3 attempts`, `1 attempt`: a count with its noun, singular or plural. */
export const counted = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** How a message names a transaction: `transaction transfer`, or `transaction` when it has no name of its own. */
export const transactionLabel = (name: string) =>
  name === 'transaction' ? 'transaction' : `transaction ${name}`;

export interface DbEventFields {
  action: string;
  kind: 'event';
  category: ['database'];
  outcome?: 'success' | 'failure' | 'unknown';
  /** Nanoseconds, as ECS's `event.duration`. */
  duration?: number;
}

/**
 * `event.*` of a database record; `durationMs` becomes `event.duration` in nanoseconds. No `event.dataset`:
 * the transport sets it to the dataset of the stream the record goes to (ECS asks that the two agree);
 * `event.action` and `event.category: database` are what tell pgsight's records apart.
 */
export function dbEvent(
  action: string,
  outcome?: DbEventFields['outcome'],
  durationMs?: number,
): DbEventFields {
  const event: DbEventFields = { action, kind: 'event', category: ['database'] };
  if (outcome !== undefined) event.outcome = outcome;
  if (durationMs !== undefined) event.duration = Math.round(durationMs * 1e6);
  return event;
}

/** ECS `error.*` for any thrown value; causes are appended to the stack trace ("caused by: ..."). */
export function errorFields(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { type: typeof error, message: String(error) };
  let stack = error.stack ?? `${error.name}: ${error.message}`;
  const messages = [error.message];
  let cause = error.cause;
  for (let depth = 0; cause !== undefined && depth < 8; depth++) {
    if (cause instanceof Error) {
      stack += `\ncaused by: ${cause.stack ?? `${cause.name}: ${cause.message}`}`;
      messages.push(cause.message);
      cause = cause.cause;
    } else {
      stack += `\ncaused by: ${String(cause)}`;
      messages.push(String(cause));
      break;
    }
  }
  const code = (error as { code?: unknown }).code;
  const sqlState = sqlStateOf(error);
  return {
    type: error.constructor?.name ?? error.name,
    message: messages.join(': '),
    stack_trace: stack,
    ...(typeof code === 'string' || typeof code === 'number'
      ? { code: String(code) }
      : sqlState
        ? { code: sqlState }
        : {}),
  };
}
