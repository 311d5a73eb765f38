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
