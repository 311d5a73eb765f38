/**
 * `recoverInDoubt`: finish pgsight's prepared transactions that their coordinator left behind.
 *   pg_prepared_xacts of each participant, pgsight's gids only ─▶ the coordinator's log:
 *   'commit' → COMMIT PREPARED; no decision → log 'rollback' (presumed abort), then ROLLBACK PREPARED
 * Transactions younger than `minAgeMs` are left alone: their coordinator may be about to decide.
 */
import { metrics } from '@opentelemetry/api';
import type pg from 'pg';
import { dbEvent } from '../../ecs/fields.js';
import { pgsightLogger } from '../../ecs/pgsight-logger.js';
import { decide, dedicated, ensureLog, loggedDecision, type Queryable } from './decision-log.js';
import { finishPrepared } from './finish-prepared.js';
import {
  checkLogTable,
  DEFAULT_LOG_TABLE,
  GID_PREFIX,
  type RecoverOptions,
  type RecoveryReport,
} from './types.js';

const inDoubtCounts = new Map<string, number>();
let gaugeRegistered = false;

function registerGauge(): void {
  if (gaugeRegistered) return;
  gaugeRegistered = true;
  metrics
    .getMeter('pgsight')
    .createObservableGauge('pgsight.db.transaction.in_doubt', {
      description:
        "pgsight's prepared transactions found in doubt by the last recoverInDoubt run, by participant.",
      unit: '{transaction}',
    })
    .addCallback((result) => {
      for (const [participant, count] of inDoubtCounts)
        result.observe(count, { 'db.transaction.participant': participant });
    });
}

export async function recoverInDoubt<P extends string>(request: {
  coordinator: pg.Pool;
  participants: Record<P, pg.Pool>;
  options?: RecoverOptions;
}): Promise<RecoveryReport> {
  const { coordinator, participants } = request;
  const options = request.options ?? {};
  const table = options.logTable ?? DEFAULT_LOG_TABLE;
  checkLogTable(table);
  const limits = { minAgeMs: options.minAgeMs ?? 10_000, warnAfterMs: options.warnAfterMs ?? 60_000 };
  registerGauge();
  // Dedicated connections throughout: the pools may be exhausted by sessions waiting on the locks of the
  // very transactions recovery is here to finish.
  return dedicated(coordinator, async (log) => {
    await ensureLog(coordinator, table, log);
    const report: RecoveryReport = { committed: [], rolledBack: [], skipped: [] };
    for (const name of Object.keys(participants) as P[])
      await dedicated(participants[name], (participant) =>
        recoverParticipant(log, table, name, participant, limits, report),
      );
    // Decided commits whose every participant is now done.
    if (report.committed.length > 0)
      await log.query(
        `UPDATE ${table} SET completed_at = now() WHERE decision = 'commit' AND completed_at IS NULL AND global_id = ANY($1)`,
        [[...new Set(report.committed.map((gid) => gid.slice(GID_PREFIX.length, gid.lastIndexOf(':'))))]],
      );
    return report;
  });
}

async function recoverParticipant(
  log: Queryable,
  table: string,
  name: string,
  participant: pg.Client,
  limits: { minAgeMs: number; warnAfterMs: number },
  report: RecoveryReport,
): Promise<void> {
  const { rows } = await participant.query<{ gid: string; prepared: Date; age_ms: number }>(
    `SELECT gid, prepared, (extract(epoch FROM now() - prepared) * 1000)::float8 AS age_ms
       FROM pg_prepared_xacts WHERE database = current_database() ORDER BY prepared`,
  );
  const ours = rows.filter((r) => r.gid.startsWith(GID_PREFIX) && r.gid.endsWith(`:${name}`));
  inDoubtCounts.set(name, ours.length);
  for (const row of ours) {
    const globalId = row.gid.slice(GID_PREFIX.length, -(name.length + 1));
    if (row.age_ms >= limits.warnAfterMs)
      pgsightLogger().warn(
        {
          event: dbEvent('db.transaction.in_doubt', undefined, row.age_ms),
          db: { transaction: { kind: 'two_phase', global_id: globalId, participant: name } },
        },
        `two-phase transaction ${globalId} has been prepared on ${name} for ${Math.round(row.age_ms / 1000)} s: it holds locks and blocks vacuum`,
      );
    let decision = await loggedDecision(log, table, globalId);
    if (!decision) {
      if (row.age_ms < limits.minAgeMs) {
        report.skipped.push(row.gid);
        continue;
      }
      // Presumed abort, written first: a coordinator that decides later finds this and rolls back.
      decision = await decide(log, table, globalId, 'rollback', [name]);
    }
    await finishPrepared(participant, decision === 'commit' ? 'COMMIT' : 'ROLLBACK', row.gid);
    (decision === 'commit' ? report.committed : report.rolledBack).push(row.gid);
    inDoubtCounts.set(name, (inDoubtCounts.get(name) ?? 1) - 1);
    const outcome = decision === 'commit' ? 'committed' : 'rolled_back';
    pgsightLogger().info(
      {
        event: dbEvent('db.transaction.recovered'),
        db: { transaction: { kind: 'two_phase', global_id: globalId, participant: name, outcome } },
      },
      `recovered two-phase transaction ${globalId} on ${name}: ${decision === 'commit' ? 'committed' : 'rolled back'}`,
    );
  }
}
