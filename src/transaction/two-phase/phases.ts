/**
 * The phases of one two-phase transaction, each on every participant in turn:
 *   beginAll ─▶ (the work) ─▶ prepareAll ─▶ (the decision) ─▶ commitAll
 *   rollbackAll undoes everything before the decision.
 */
import { context, type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import type pg from 'pg';
import { counted, dbEvent } from '../../ecs/fields.js';
import { pgsightLogger } from '../../ecs/pgsight-logger.js';
import { PgsightError } from '../../errors.js';
import { backoffDelayMs } from '../../pg/backoff.js';
import { connectGuarded, ignoreLateError, isConnectionLoss } from '../../pg/connection.js';
import { sqlStateOf } from '../../pg/sqlstate.js';
import { Transaction } from '../handle.js';
import { finishOn } from './finish-prepared.js';
import { gidOf } from './types.js';

export interface Participant<P extends string> {
  name: P;
  pool: pg.Pool;
  client: pg.PoolClient | undefined;
  broken: boolean;
  onError: () => void;
  prepared: boolean;
}

/** One two-phase transaction: its id, span, participants, and how it records its end. */
export interface TwoPhaseRun<P extends string> {
  globalId: string;
  span: Span;
  all: Participant<P>[];
  end(outcome: 'committed' | 'rolled_back' | 'unknown', error?: unknown): void;
}

export function participantsOf<P extends string>(names: P[], pools: Record<P, pg.Pool>): Participant<P>[] {
  return names.map((name) => {
    const p: Participant<P> = {
      name,
      pool: pools[name],
      client: undefined,
      broken: false,
      prepared: false,
      onError: () => {
        p.broken = true;
      },
    };
    return p;
  });
}

/** Give the participant's session back to its pool (destroyed when broken: see transaction/lease.ts). */
export function release<P extends string>(p: Participant<P>): void {
  if (!p.client) return;
  p.client.removeListener('error', p.onError);
  if (p.broken) p.client.on('error', ignoreLateError);
  p.client.release(p.broken ? new Error('pgsight: destroyed') : undefined);
  p.client = undefined;
}

function phaseSpan(parent: Span, name: string): Span {
  return trace.getTracer('pgsight').startSpan(name, {}, trace.setSpan(context.active(), parent));
}

/** BEGIN on every participant; the Transaction each hands to the work. */
export async function beginAll<P extends string>(
  run: TwoPhaseRun<P>,
  beginSql: string,
  name: string,
): Promise<Record<P, Transaction>> {
  const clients = {} as Record<P, Transaction>;
  for (const p of run.all) {
    p.client = await connectGuarded(p.pool, p.onError);
    await p.client.query(beginSql);
    clients[p.name] = new Transaction({
      client: p.client as unknown as Transaction['client'],
      name: `${name}.${p.name}`,
      depth: 0,
      attempt: 1,
      db: p.pool,
      span: run.span,
      watchdog: undefined,
      signal: undefined,
    });
  }
  return clients;
}

/** Undo everything before the decision: ROLLBACK what is open, ROLLBACK PREPARED what was prepared. */
export async function rollbackAll<P extends string>(run: TwoPhaseRun<P>, error: unknown): Promise<void> {
  for (const p of run.all) {
    try {
      if (p.prepared) await finishOn(p.pool, p.client, p.broken, 'ROLLBACK', gidOf(run.globalId, p.name));
      else if (p.client && !p.broken) await p.client.query('ROLLBACK');
    } catch (rollbackError) {
      p.broken = true;
      // A prepared transaction left behind here is rolled back by recoverInDoubt (no decision was logged).
      pgsightLogger().warn(
        { err: rollbackError, db: { transaction: { global_id: run.globalId, participant: p.name } } },
        `two-phase transaction ${run.globalId}: could not roll back participant ${p.name}; recoverInDoubt will`,
      );
    }
    release(p);
  }
  run.end('rolled_back', error);
}

function disabledError(participant: string, error: unknown): PgsightError {
  return new PgsightError(
    'PGSIGHT_ERR_2PC_DISABLED',
    `participant ${participant}: PostgreSQL has prepared transactions disabled (max_prepared_transactions = 0). ` +
      'Enable them: ALTER SYSTEM SET max_prepared_transactions = 64; then restart PostgreSQL.',
    { cause: error },
  );
}

/** PREPARE TRANSACTION everywhere; a participant that cannot prepare rolls every one back, and throws. */
export async function prepareAll<P extends string>(run: TwoPhaseRun<P>): Promise<void> {
  for (const p of run.all) {
    const prepare = phaseSpan(run.span, `prepare ${p.name}`);
    try {
      await (p.client as pg.PoolClient).query(`PREPARE TRANSACTION '${gidOf(run.globalId, p.name)}'`);
      p.prepared = true;
      prepare.end();
      // The session is kept for COMMIT PREPARED: its locks now belong to the prepared transaction, and
      // sessions waiting on them may hold every other connection of the pool.
    } catch (error) {
      prepare.setStatus({
        code: SpanStatusCode.ERROR,
        message: `PREPARE failed (${sqlStateOf(error) ?? 'error'})`,
      });
      prepare.end();
      // A failed PREPARE ends that participant's transaction on the server.
      if (!isConnectionLoss(error)) release(p);
      await rollbackAll(run, error);
      if (sqlStateOf(error) === '55000' && /prepared transactions are disabled/.test(String(error)))
        throw disabledError(p.name, error);
      throw new PgsightError(
        'PGSIGHT_ERR_2PC_ABORTED',
        `two-phase transaction ${run.globalId} rolled back: participant ${p.name} could not prepare (${sqlStateOf(error) ?? (error as Error).message})`,
        { cause: error },
      );
    }
  }
}

/**
 * COMMIT PREPARED everywhere. Decided: retried with backoff, never rolled back; a participant that keeps
 * failing is left to recoverInDoubt. Returns the participants left.
 */
export async function commitAll<P extends string>(
  run: TwoPhaseRun<P>,
  attempts: number,
  baseMs: number,
  maxMs: number,
): Promise<P[]> {
  const left: P[] = [];
  for (const p of run.all) {
    const commit = phaseSpan(run.span, `commit ${p.name}`);
    for (let attempt = 1; ; attempt++) {
      try {
        await finishOn(p.pool, p.client, p.broken, 'COMMIT', gidOf(run.globalId, p.name));
        commit.end();
        break;
      } catch (error) {
        if (attempt >= attempts) {
          commit.setStatus({ code: SpanStatusCode.ERROR, message: 'COMMIT PREPARED left to recovery' });
          commit.end();
          left.push(p.name);
          pgsightLogger().warn(
            {
              err: error,
              event: dbEvent('db.transaction.commit_pending'),
              db: { transaction: { kind: 'two_phase', global_id: run.globalId, participant: p.name } },
            },
            `two-phase transaction ${run.globalId} is committed, but COMMIT PREPARED on ${p.name} failed ${counted(attempt, 'time')}; recoverInDoubt will finish it`,
          );
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, backoffDelayMs(attempt, baseMs, maxMs)));
      }
    }
  }
  for (const p of run.all) release(p);
  return left;
}
