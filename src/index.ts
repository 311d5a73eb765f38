export {
  type Config,
  type ConfigProblem,
  configVariables,
  defaults,
  type LoadConfigOptions,
  loadConfig,
} from './config.js';
export { errorCodes, PgsightError, type PgsightErrorCode } from './errors.js';
export { createQueryNormalizer, type NormalizedQuery, normalizeQuery } from './instrumentation/normalize.js';
export { type Sidecar, type SidecarOptions, startSidecar } from './instrumentation/sidecar.js';
export { classifySqlState, type SqlStateKind, sqlStateOf } from './instrumentation/sqlstate.js';
export { bindLogContext, getLogContext, type LogFields, withLogContext } from './log/context.js';
export { type CreateLoggerOptions, createLogger, type Environment } from './log/create-logger.js';
export { errorFields, installProcessErrorHooks, logError } from './log/error.js';
export {
  fastifyRequestId,
  fastifyRequestLogging,
  type RequestLoggingOptions,
  requestLogging,
} from './log/request-logging.js';
export { type TimedOptions, timed } from './log/timed.js';
export { type LockMode, type LockRowsOptions, lockRows, quoteIdentifier } from './transaction/lock-rows.js';
export {
  type BackoffOptions,
  backoffDelayMs,
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
} from './transaction/two-phase.js';
