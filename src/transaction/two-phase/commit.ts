/**
 * `twoPhaseCommit`: one transaction across PostgreSQL databases
 * (https://www.postgresql.org/docs/current/sql-prepare-transaction.html):
 *
 *   beginAll ─▶ fn(clients) ─▶ prepareAll ─▶ decide: 'commit' committed in the coordinator's log ─▶ commitAll
 *   any failure before the decision: rollbackAll
 */
import { randomUUID } from 'node:crypto';
import { context, trace } from '@opentelemetry/api';
import type pg from 'pg';
import { PgsightError } from '../../errors.js';
import { isConnectionLoss } from '../../pg/connection.js';
import { sqlStateOf } from '../../pg/sqlstate.js';
import { resolveOptions } from '../options.js';
import { recordEnd, startTransactionSpan, type TransactionInfo } from '../telemetry.js';
import { type Decision, decide, ensureLog } from './decision-log.js';
import { beginAll, commitAll, participantsOf, prepareAll, rollbackAll, type TwoPhaseRun } from './phases.js';
import { checkLogTable, DEFAULT_LOG_TABLE, invalid, PARTICIPANT, type TwoPhaseRequest } from './types.js';

export async function twoPhaseCommit<P extends string, T>(request: TwoPhaseRequest<P, T>): Promise<T> {
  const { coordinator, participants, fn } = request;
  const options = request.options ?? {};
  if (!coordinator || typeof (coordinator as { query?: unknown }).query !== 'function')
    invalid('coordinator must be a pg Pool');
  if (typeof fn !== 'function') invalid('fn must be a function');
  const names = Object.keys(participants ?? {}) as P[];
  if (names.length === 0) invalid('participants must name at least one database');
  for (const name of names) {
    if (!PARTICIPANT.test(name))
      invalid(`participant name ${JSON.stringify(name)} must be 1-40 letters, digits or _`);
    if (typeof (participants[name] as { connect?: unknown })?.connect !== 'function')
      invalid(`participants.${name} must be a pg Pool`);
  }
  const table = options.logTable ?? DEFAULT_LOG_TABLE;
  checkLogTable(table);
  const commitAttempts = options.commitAttempts ?? 5;
  if (!Number.isInteger(commitAttempts) || commitAttempts < 1)
    invalid('commitAttempts must be a whole number >= 1');
  // The same rules as transaction()'s options, for what they share.
  const resolved = resolveOptions({
    name: options.name ?? 'two_phase',
    ...(options.isolationLevel ? { isolationLevel: options.isolationLevel } : {}),
    ...(options.backoff ? { backoff: options.backoff } : { backoff: { baseMs: 50, maxMs: 2000 } }),
  });
  await ensureLog(coordinator, table);

  const globalId = randomUUID();
  const startedAt = performance.now();
  const info: TransactionInfo = {
    name: resolved.name,
    isolationLevel: resolved.isolationLevel,
    namespace: undefined,
    kind: 'two_phase',
    globalId,
  };
  const span = startTransactionSpan(info);
  const run: TwoPhaseRun<P> = {
    globalId,
    span,
    all: participantsOf(names, participants),
    end: (outcome, error) => recordEnd(info, span, outcome, 1, startedAt, sqlStateOf(error), error),
  };

  return context.with(trace.setSpan(context.active(), span), async () => {
    let result: T;
    try {
      result = await fn(await beginAll(run, resolved.beginSql, resolved.name), { globalId });
    } catch (error) {
      await rollbackAll(run, error);
      throw error;
    }
    await prepareAll(run);
    await options.onPhase?.('prepared', globalId);
    await logCommit(run, coordinator, table, names);
    await options.onPhase?.('decided', globalId);
    const left = await commitAll(run, commitAttempts, resolved.baseMs, resolved.maxMs);
    if (left.length === 0)
      await coordinator
        .query(`UPDATE ${table} SET completed_at = now() WHERE global_id = $1`, [globalId])
        .catch(() => {});
    run.end('committed');
    await options.onPhase?.('committed', globalId);
    return result;
  });
}

/** The decision, committed in the coordinator's log before anything is committed anywhere. */
async function logCommit<P extends string>(
  run: TwoPhaseRun<P>,
  coordinator: pg.Pool,
  table: string,
  names: P[],
): Promise<void> {
  let decision: Decision;
  try {
    // On a participant's session when the coordinator's pool is a participant's: asking that pool for a
    // connection now could wait behind sessions blocked on these very prepared transactions.
    const own = run.all.find((p) => p.pool === coordinator && p.client && !p.broken);
    decision = await decide(own?.client ?? coordinator, table, run.globalId, 'commit', names);
  } catch (error) {
    if (isConnectionLoss(error)) {
      // The decision may or may not be logged: recoverInDoubt reads the log and finishes it either way.
      run.end('unknown', error);
      throw new PgsightError(
        'PGSIGHT_ERR_TX_OUTCOME_UNKNOWN',
        `two-phase transaction ${run.globalId}: the coordinator was lost while logging the decision; recoverInDoubt resolves it`,
        { cause: error },
      );
    }
    await rollbackAll(run, error);
    throw new PgsightError(
      'PGSIGHT_ERR_2PC_ABORTED',
      `two-phase transaction ${run.globalId} rolled back: the decision could not be logged`,
      { cause: error },
    );
  }
  if (decision === 'rollback') {
    const error = new PgsightError(
      'PGSIGHT_ERR_2PC_ABORTED',
      `two-phase transaction ${run.globalId} rolled back: recovery decided before this coordinator did`,
    );
    await rollbackAll(run, error);
    throw error;
  }
}
