/** Two-phase commit's public shapes, its identifiers and the checks they share. */
import type pg from 'pg';
import { PgsightError } from '../../errors.js';
import type { Transaction } from '../handle.js';
import type { IsolationLevel } from '../options.js';

export const GID_PREFIX = 'pgsight_2pc:';
export const PARTICIPANT = /^[A-Za-z0-9_]{1,40}$/;
export const TABLE = /^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$/;
export const DEFAULT_LOG_TABLE = 'pgsight_2pc_log';

export type TwoPhasePhase = 'prepared' | 'decided' | 'committed';

export interface TwoPhaseOptions {
  /** For spans and records. @default 'two_phase' */
  name?: string;
  /** In each participant's BEGIN. @default the server's (read committed) */
  isolationLevel?: IsolationLevel;
  /** COMMIT PREPARED attempts per participant before it is left to recoverInDoubt. @default 5 */
  commitAttempts?: number;
  /** Backoff between those attempts (ms). @default { baseMs: 50, maxMs: 2000 } */
  backoff?: { baseMs?: number; maxMs?: number };
  /** The coordinator's decision log, created when missing. @default 'pgsight_2pc_log' */
  logTable?: string;
  /** Called after each phase completes, with the global id (metrics, or fault injection in tests). */
  onPhase?: (phase: TwoPhasePhase, globalId: string) => void | Promise<void>;
}

export interface TwoPhaseRequest<P extends string, T> {
  /** Where the decisions are logged. */
  coordinator: pg.Pool;
  /** Participant name → its database. */
  participants: Record<P, pg.Pool>;
  /** The work: one transaction per participant, by name; and the global id (for the rows it writes). */
  fn: (clients: Record<P, Transaction>, meta: { globalId: string }) => Promise<T> | T;
  options?: TwoPhaseOptions;
}

export interface RecoverOptions {
  /** Prepared transactions younger than this are left alone (their coordinator may be deciding). @default 10000 */
  minAgeMs?: number;
  /** In doubt longer than this is a warning record: prepared transactions hold locks and block vacuum. @default 60000 */
  warnAfterMs?: number;
  /** @default 'pgsight_2pc_log' */
  logTable?: string;
}

export interface RecoveryReport {
  committed: string[];
  rolledBack: string[];
  /** Younger than minAgeMs: left for a later run. */
  skipped: string[];
}

/** A prepared transaction's id: prepared transactions are per cluster, and two participants may share one. */
export const gidOf = (globalId: string, participant: string) => `${GID_PREFIX}${globalId}:${participant}`;

export function invalid(message: string): never {
  throw new PgsightError('PGSIGHT_ERR_ARGUMENT_INVALID', message);
}

export function checkLogTable(table: string): void {
  if (!TABLE.test(table)) invalid(`logTable must be a lower-case table name, got ${JSON.stringify(table)}`);
}
