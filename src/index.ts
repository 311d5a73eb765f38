export {
  type Config,
  type ConfigProblem,
  configVariables,
  defaults,
  type LoadConfigOptions,
  loadConfig,
} from './config/env.js';
export { errorFields } from './ecs/fields.js';
export { bindLogContext, getLogContext, type LogFields, withLogContext } from './ecs/log-context.js';
export { errorCodes, PgsightError, type PgsightErrorCode } from './errors.js';
export {
  type CreateLoggerOptions,
  createLogger,
  type Environment,
  logWithContext,
} from './log/create-logger.js';
export { installProcessErrorHooks, logError } from './log/error.js';
export {
  fastifyRequestId,
  fastifyRequestLogging,
  type RequestLoggingOptions,
  requestLogging,
} from './log/request-logging.js';
export { type TimedOptions, timed } from './log/timed.js';
export { backoffDelayMs } from './pg/backoff.js';
export { type NormalizedQuery, normalizeQuery } from './pg/normalize.js';
export { createQueryNormalizer } from './pg/query-cache.js';
export { classifySqlState, type SqlStateKind, sqlStateOf } from './pg/sqlstate.js';
export { type Sidecar, type SidecarOptions, startSidecar } from './preload/sidecar.js';
export { type LockMode, type LockRowsOptions, lockRows, quoteIdentifier } from './transaction/lock-rows.js';
export {
  type BackoffOptions,
  type IsolationLevel,
  type TransactionOptions,
  transactionDefaults,
} from './transaction/options.js';
export {
  currentTransaction,
  type Db,
  getCurrentTransaction,
  Transaction,
  transaction,
} from './transaction/transaction.js';
export { type TransactionalOptions, transactional } from './transaction/transactional.js';
export {
  GID_PREFIX,
  type RecoverOptions,
  type RecoveryReport,
  recoverInDoubt,
  type TwoPhaseOptions,
  type TwoPhasePhase,
  type TwoPhaseRequest,
  twoPhaseCommit,
} from './transaction/two-phase/index.js';
