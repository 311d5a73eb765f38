/**
 * SQLSTATE classification by table, per PostgreSQL's Appendix A
 * (https://www.postgresql.org/docs/current/errcodes-appendix.html). Exact codes win over their class.
 */
export type SqlStateKind =
  | 'retryable'
  | 'connection'
  | 'constraint'
  | 'timeout'
  | 'outcome_unknown'
  | 'other';

const BY_CODE: Readonly<Record<string, SqlStateKind>> = {
  '40001': 'retryable', // serialization_failure
  '40P01': 'retryable', // deadlock_detected
  '40003': 'outcome_unknown', // statement_completion_unknown
  '57014': 'timeout', // query_canceled (statement_timeout)
  '55P03': 'timeout', // lock_not_available (lock_timeout, NOWAIT)
  '25P03': 'timeout', // idle_in_transaction_session_timeout
  '57P01': 'connection', // admin_shutdown (pg_terminate_backend)
  '57P02': 'connection', // crash_shutdown
  '57P03': 'connection', // cannot_connect_now
};

const BY_CLASS: Readonly<Record<string, SqlStateKind>> = {
  '08': 'connection', // connection exception
  '23': 'constraint', // integrity constraint violation
};

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** The SQLSTATE of a pg error (or of the first error in its cause chain that has one). */
export function sqlStateOf(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && SQLSTATE.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

export function classifySqlState(code: string | undefined): SqlStateKind {
  if (code === undefined) return 'other';
  return BY_CODE[code] ?? BY_CLASS[code.slice(0, 2)] ?? 'other';
}
