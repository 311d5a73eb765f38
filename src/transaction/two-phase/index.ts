/**
 * Two-phase commit across PostgreSQL databases: `twoPhaseCommit` (commit.ts) and `recoverInDoubt`
 * (recovery.ts), which meet in the coordinator's decision log (decision-log.ts). Gids are
 * `pgsight_2pc:<global id>:<participant>`.
 */
export { twoPhaseCommit } from './commit.js';
export { recoverInDoubt } from './recovery.js';
export {
  GID_PREFIX,
  type RecoverOptions,
  type RecoveryReport,
  type TwoPhaseOptions,
  type TwoPhasePhase,
  type TwoPhaseRequest,
} from './types.js';
