/**
 * pgsight's error catalogue: one base class with a stable `code`, and one table of codes.
 * The README's "Error codes" section mirrors this table; a test keeps the two in step.
 */

export const errorCodes = {
  PGSIGHT_ERR_CONFIG_INVALID: 'One or more configuration values are invalid.',
  PGSIGHT_ERR_ARGUMENT_INVALID: 'A library function was called with an invalid argument.',
  PGSIGHT_ERR_TX_RETRIES_EXHAUSTED:
    'The transaction failed with a retryable SQLSTATE on every attempt; `attempts` lists each SQLSTATE.',
  PGSIGHT_ERR_TX_OUTCOME_UNKNOWN:
    'The connection was lost after COMMIT was sent: the transaction may or may not have committed. Never retried.',
  PGSIGHT_ERR_TX_ABORTED: "The transaction's AbortSignal fired; the transaction was rolled back.",
  PGSIGHT_ERR_TRANSPORT_OPTIONS: 'pgsight/transport was given invalid options; every problem is listed.',
  PGSIGHT_ERR_TX_NONE: 'There is no transaction running in this async context.',
  PGSIGHT_ERR_2PC_ABORTED:
    'A two-phase transaction was rolled back on every participant before its commit decision; `cause` says why.',
  PGSIGHT_ERR_2PC_DISABLED:
    'A participant has prepared transactions disabled (max_prepared_transactions = 0); nothing was committed.',
  PGSIGHT_ERR_TESTING_UNREACHABLE:
    '`pgsight/testing` could not connect to PostgreSQL; the message names where it tried (never the password).',
  PGSIGHT_ERR_TESTING_DATABASE_MISSING:
    '`pgsight/testing` reached PostgreSQL, but the database the connection names does not exist.',
  PGSIGHT_ERR_SETUP_UNREACHABLE: '`pgsight setup` could not connect to Elasticsearch or Kibana.',
  PGSIGHT_ERR_SETUP_UNAUTHORIZED:
    'Elasticsearch or Kibana refused the credentials given to `pgsight setup` (401 / 403).',
  PGSIGHT_ERR_SETUP_VERSION:
    'Elasticsearch or Kibana is older than the oldest version the dashboards support.',
  PGSIGHT_ERR_SETUP_IMPORT:
    'Kibana imported some saved objects of a dashboard file but not all; each failure is listed.',
  PGSIGHT_ERR_SETUP_REQUEST:
    'Elasticsearch or Kibana answered a `pgsight setup` request with an unexpected error.',
} as const;

export type PgsightErrorCode = keyof typeof errorCodes;

export class PgsightError extends Error {
  override readonly name = 'PgsightError';
  readonly code: PgsightErrorCode;
  /** Extra, machine-readable detail (for example every invalid setting). */
  readonly details: readonly unknown[];

  constructor(code: PgsightErrorCode, message: string, options?: { cause?: unknown; details?: unknown[] }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = Object.freeze([...(options?.details ?? [])]);
  }
}
