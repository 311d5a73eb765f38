/**
 * Transaction options: validated before anything is sent, and turned into the BEGIN statement itself
 * (isolation level, READ ONLY, DEFERRABLE go in BEGIN, not in a SET before it, which has no effect:
 * https://www.postgresql.org/docs/current/sql-begin.html).
 */
import { Problems } from '../config/problems.js';

export type IsolationLevel = 'read committed' | 'repeatable read' | 'serializable';

export interface BackoffOptions {
  /** First retry's delay cap (ms); each retry doubles it. @default 10 */
  baseMs?: number;
  /** Largest delay (ms). @default 1000 */
  maxMs?: number;
}

export interface TransactionOptions {
  /** Names the span (`db.transaction <name>`) and the records. @default 'transaction' */
  name?: string;
  /** @default the server's default_transaction_isolation (normally 'read committed') */
  isolationLevel?: IsolationLevel;
  /** BEGIN ... READ ONLY. @default false */
  readOnly?: boolean;
  /** BEGIN ... DEFERRABLE; takes effect only with serializable + readOnly. @default false */
  deferrable?: boolean;
  /** Attempts of the outermost transaction, the first one included. @default 5 */
  maxAttempts?: number;
  /** Exponential backoff with full jitter between attempts. @default { baseMs: 10, maxMs: 1000 } */
  backoff?: BackoffOptions;
  /** SQLSTATEs that re-run the whole transaction. @default ['40001', '40P01'] */
  retryOn?: readonly string[];
  /** SET LOCAL statement_timeout (ms). */
  statementTimeoutMs?: number;
  /** SET LOCAL lock_timeout (ms). */
  lockTimeoutMs?: number;
  /** SET LOCAL idle_in_transaction_session_timeout (ms). */
  idleInTransactionTimeoutMs?: number;
  /** Aborting rolls the transaction back; queries after the abort are not sent. */
  signal?: AbortSignal;
}

export interface ResolvedOptions {
  name: string;
  isolationLevel: IsolationLevel | undefined;
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
  retryOn: ReadonlySet<string>;
  signal: AbortSignal | undefined;
  /** BEGIN plus SET LOCALs, joined into one simple-protocol round trip. */
  beginSql: string;
}

export const transactionDefaults = Object.freeze({
  name: 'transaction',
  maxAttempts: 5,
  backoff: Object.freeze({ baseMs: 10, maxMs: 1000 }),
  retryOn: Object.freeze(['40001', '40P01']),
});

const ISOLATION: Record<IsolationLevel, string> = {
  'read committed': 'ISOLATION LEVEL READ COMMITTED',
  'repeatable read': 'ISOLATION LEVEL REPEATABLE READ',
  serializable: 'ISOLATION LEVEL SERIALIZABLE',
};
/** Every option `transaction()` takes (the README check reads it too). */
export const transactionOptionNames: readonly string[] = [
  'name',
  'isolationLevel',
  'readOnly',
  'deferrable',
  'maxAttempts',
  'backoff',
  'retryOn',
  'statementTimeoutMs',
  'lockTimeoutMs',
  'idleInTransactionTimeoutMs',
  'signal',
];
const KNOWN: ReadonlySet<string> = new Set(transactionOptionNames);
const SQLSTATE = /^[0-9A-Z]{5}$/;

const isWhole = (n: unknown, min: number, max: number) =>
  Number.isInteger(n) && (n as number) >= min && (n as number) <= max;

let defaultResolved: ResolvedOptions | undefined;

/** Validate options (throwing one PgsightError naming every problem) and precompute the BEGIN statement. */
export function resolveOptions(options: TransactionOptions | undefined): ResolvedOptions {
  if (options === undefined) {
    defaultResolved ??= resolveOptions({});
    return defaultResolved;
  }
  const o = options;
  const problems = new Problems();
  if (typeof o !== 'object' || o === null) {
    problems.add(`options must be an object, got ${typeof o}`);
    problems.throwIfAny('PGSIGHT_ERR_ARGUMENT_INVALID', 'invalid transaction options');
  }
  problems.unknownKeys(o, KNOWN);
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name.length === 0 || o.name.length > 200))
    problems.add(`name must be a non-empty string of at most 200 characters, got ${JSON.stringify(o.name)}`);
  if (o.isolationLevel !== undefined && !(o.isolationLevel in ISOLATION))
    problems.add(
      `isolationLevel must be one of ${Object.keys(ISOLATION)
        .map((l) => `'${l}'`)
        .join(', ')}, got ${JSON.stringify(o.isolationLevel)}`,
    );
  for (const flag of ['readOnly', 'deferrable'] as const)
    if (o[flag] !== undefined && typeof o[flag] !== 'boolean') problems.add(`${flag} must be a boolean`);
  if (o.maxAttempts !== undefined && !isWhole(o.maxAttempts, 1, 1000))
    problems.add(`maxAttempts must be a whole number from 1 to 1000, got ${JSON.stringify(o.maxAttempts)}`);
  const baseMs = o.backoff?.baseMs ?? transactionDefaults.backoff.baseMs;
  const maxMs = o.backoff?.maxMs ?? transactionDefaults.backoff.maxMs;
  if (!isWhole(baseMs, 0, 600_000))
    problems.add(`backoff.baseMs must be a whole number of ms, got ${JSON.stringify(baseMs)}`);
  if (!isWhole(maxMs, 0, 600_000) || maxMs < baseMs)
    problems.add(`backoff.maxMs must be a whole number of ms, at least baseMs, got ${JSON.stringify(maxMs)}`);
  const retryOn = o.retryOn ?? transactionDefaults.retryOn;
  if (!Array.isArray(retryOn) || retryOn.some((c) => typeof c !== 'string' || !SQLSTATE.test(c)))
    problems.add(`retryOn must be an array of 5-character SQLSTATEs, got ${JSON.stringify(o.retryOn)}`);
  const sets: string[] = [];
  for (const [option, setting] of [
    ['statementTimeoutMs', 'statement_timeout'],
    ['lockTimeoutMs', 'lock_timeout'],
    ['idleInTransactionTimeoutMs', 'idle_in_transaction_session_timeout'],
  ] as const) {
    const value = o[option];
    if (value === undefined) continue;
    if (!isWhole(value, 0, 2_147_483_647))
      problems.add(`${option} must be a whole number of ms, got ${JSON.stringify(value)}`);
    else sets.push(`SET LOCAL ${setting} = ${value}`);
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    problems.add('signal must be an AbortSignal');
  problems.throwIfAny('PGSIGHT_ERR_ARGUMENT_INVALID', 'invalid transaction options');

  const modes = [
    o.isolationLevel ? ISOLATION[o.isolationLevel] : undefined,
    o.readOnly ? 'READ ONLY' : undefined,
    o.deferrable ? 'DEFERRABLE' : undefined,
  ].filter(Boolean);
  const begin = modes.length > 0 ? `BEGIN ${modes.join(', ')}` : 'BEGIN';
  return {
    name: o.name ?? transactionDefaults.name,
    isolationLevel: o.isolationLevel,
    maxAttempts: o.maxAttempts ?? transactionDefaults.maxAttempts,
    baseMs,
    maxMs,
    retryOn: new Set(retryOn),
    signal: o.signal,
    beginSql: [begin, ...sets].join('; '),
  };
}
