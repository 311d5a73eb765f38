/**
 * Two-phase commit across PostgreSQL databases (https://www.postgresql.org/docs/current/sql-prepare-transaction.html):
 *
 *   twoPhaseCommit:  BEGIN on every participant ─▶ fn(clients) ─▶ PREPARE TRANSACTION '<gid>' on each
 *                    ─▶ decision row ('commit') committed in the coordinator's log ─▶ COMMIT PREPARED on each
 *                       (retried; never rolled back once decided; left to recovery when it keeps failing)
 *                    any failure before the decision: ROLLBACK (PREPARED) on every participant
 *
 *   recoverInDoubt:  pg_prepared_xacts of each participant, pgsight's gids only ─▶ the coordinator's log:
 *                    'commit' → COMMIT PREPARED; no decision → log 'rollback', then ROLLBACK PREPARED
 *
 * The decision is one row per global id, and the first writer wins (INSERT ... ON CONFLICT DO NOTHING): a
 * coordinator logging 'commit' and a recovery logging 'rollback' for the same transaction cannot both
 * succeed, so recovery can run at start-up and next to live work without undoing a decided commit. Recovery
 * leaves transactions younger than `minAgeMs` alone, so it does not abort work that is about to decide.
 *
 * Gids are `pgsight_2pc:<global id>:<participant>`: prepared transactions are per cluster, and two
 * participants may be databases of one cluster.
 */
import { randomUUID } from 'node:crypto';
import { context, metrics, type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import type pg from 'pg';
import { PgsightError } from '../errors.js';
import { sqlStateOf } from '../instrumentation/sqlstate.js';
import { pgsightLogger } from '../log/pgsight-logger.js';
import { backoffDelayMs, type IsolationLevel, resolveOptions } from './options.js';
import { recordEnd, startTransactionSpan, type TransactionInfo } from './telemetry.js';
import { connectGuarded, ignoreLateError, isConnectionLoss, Transaction } from './transaction.js';

export const GID_PREFIX = 'pgsight_2pc:';
const PARTICIPANT = /^[A-Za-z0-9_]{1,40}$/;
const TABLE = /^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$/;
/** undefined_object: the prepared transaction is gone (committed or rolled back by someone else). */
const GONE = '42704';
/** object_not_in_prerequisite_state: the prepared transaction is being finished by another session. */
const BUSY = '55000';

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

function invalid(message: string): never {
  throw new PgsightError('PGSIGHT_ERR_ARGUMENT_INVALID', message);
}

const gidOf = (globalId: string, participant: string) => `${GID_PREFIX}${globalId}:${participant}`;

// ---- the decision log --------------------------------------------------------------------------------------

const ensured = new WeakMap<pg.Pool, Set<string>>();

async function ensureLog(coordinator: pg.Pool, table: string, session?: pg.ClientBase): Promise<void> {
  const tables = ensured.get(coordinator) ?? new Set();
  ensured.set(coordinator, tables);
  if (tables.has(table)) return;
  const client = session ?? (await connectGuarded(coordinator, ignoreLateError));
  try {
    await client.query('BEGIN');
    // Concurrent CREATE TABLE IF NOT EXISTS can still collide on the catalog: serialize them.
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('pgsight_2pc_log'))`);
    await client.query(`
      CREATE TABLE IF NOT EXISTS ${table} (
        global_id    text PRIMARY KEY,
        decision     text NOT NULL CHECK (decision IN ('commit', 'rollback')),
        participants text[] NOT NULL,
        decided_at   timestamptz NOT NULL DEFAULT now(),
        completed_at timestamptz
      )`);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    if (!session) {
      client.removeListener('error', ignoreLateError);
      (client as pg.PoolClient).release();
    }
  }
  tables.add(table);
}

type Queryable = Pick<pg.ClientBase, 'query'>;

/**
 * A connection of its own to the pool's database, outside the pool. Recovery and a participant whose
 * session broke use one: the pool may be exhausted by sessions waiting on the very locks a prepared
 * transaction holds, and whatever finishes that transaction must not queue behind them.
 */
async function dedicated<T>(pool: pg.Pool, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const Client = (pool as unknown as { Client: new (config: unknown) => pg.Client }).Client;
  const client = new Client((pool as unknown as { options: unknown }).options);
  client.on('error', () => {}); // a failure surfaces through the query's rejection
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The decision for `globalId`: the one written by `decision`, or the one someone wrote first. */
async function decide(
  coordinator: Queryable,
  table: string,
  globalId: string,
  decision: 'commit' | 'rollback',
  participants: string[],
): Promise<'commit' | 'rollback'> {
  const written = await coordinator.query(
    `INSERT INTO ${table} (global_id, decision, participants) VALUES ($1, $2, $3)
     ON CONFLICT (global_id) DO NOTHING`,
    [globalId, decision, participants],
  );
  if (written.rowCount === 1) return decision;
  const { rows } = await coordinator.query<{ decision: 'commit' | 'rollback' }>(
    `SELECT decision FROM ${table} WHERE global_id = $1`,
    [globalId],
  );
  return rows[0]?.decision ?? decision;
}

/** COMMIT / ROLLBACK PREPARED; a gid already gone counts as done (recovery or a retry got there first). */
async function finish(db: Queryable, verb: 'COMMIT' | 'ROLLBACK', gid: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await db.query(`${verb} PREPARED '${gid}'`);
      return;
    } catch (error) {
      if (sqlStateOf(error) === GONE) return;
      // "prepared transaction ... is busy": another session (recovery, or the coordinator) is finishing it,
      // with the same logged decision. Wait until it is gone.
      if (sqlStateOf(error) !== BUSY || attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10 * attempt));
    }
  }
}

/** On the participant's own session when it is usable, else on a dedicated connection. */
function finishPrepared(
  pool: pg.Pool,
  client: pg.PoolClient | undefined,
  broken: boolean,
  verb: 'COMMIT' | 'ROLLBACK',
  gid: string,
): Promise<void> {
  return client && !broken ? finish(client, verb, gid) : dedicated(pool, (c) => finish(c, verb, gid));
}

function phaseSpan(parent: Span, name: string): Span {
  return trace.getTracer('pgsight').startSpan(name, {}, trace.setSpan(context.active(), parent));
}

function disabledError(participant: string, error: unknown): PgsightError {
  return new PgsightError(
    'PGSIGHT_ERR_2PC_DISABLED',
    `participant ${participant}: PostgreSQL has prepared transactions disabled (max_prepared_transactions = 0). ` +
      'Enable them: ALTER SYSTEM SET max_prepared_transactions = 64; then restart PostgreSQL.',
    { cause: error },
  );
}

// ---- twoPhaseCommit ----------------------------------------------------------------------------------------

interface Participant<P extends string> {
  name: P;
  pool: pg.Pool;
  client: pg.PoolClient | undefined;
  broken: boolean;
  onError: () => void;
  prepared: boolean;
}

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
  const table = options.logTable ?? 'pgsight_2pc_log';
  if (!TABLE.test(table)) invalid(`logTable must be a lower-case table name, got ${JSON.stringify(table)}`);
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
  const end = (outcome: 'committed' | 'rolled_back' | 'unknown', error?: unknown) =>
    recordEnd(info, span, outcome, 1, startedAt, sqlStateOf(error), error);
  const all: Participant<P>[] = names.map((name) => {
    const p: Participant<P> = {
      name,
      pool: participants[name],
      client: undefined,
      broken: false,
      prepared: false,
      onError: () => {
        p.broken = true;
      },
    };
    return p;
  });
  const release = (p: Participant<P>) => {
    if (!p.client) return;
    p.client.removeListener('error', p.onError);
    if (p.broken) p.client.on('error', ignoreLateError); // see transaction.ts finish()
    p.client.release(p.broken ? new Error('pgsight: destroyed') : undefined);
    p.client = undefined;
  };
  /** Undo everything before the decision: ROLLBACK what is open, ROLLBACK PREPARED what was prepared. */
  const abort = async (error: unknown) => {
    for (const p of all) {
      try {
        if (p.prepared) await finishPrepared(p.pool, p.client, p.broken, 'ROLLBACK', gidOf(globalId, p.name));
        else if (p.client && !p.broken) await p.client.query('ROLLBACK');
      } catch (rollbackError) {
        p.broken = true;
        // A prepared transaction left behind here is rolled back by recoverInDoubt (no decision was logged).
        pgsightLogger().warn(
          { err: rollbackError, db: { transaction: { global_id: globalId, participant: p.name } } },
          `two-phase transaction ${globalId}: could not roll back participant ${p.name}; recoverInDoubt will`,
        );
      }
      release(p);
    }
    end('rolled_back', error);
  };

  return context.with(trace.setSpan(context.active(), span), async () => {
    // Phase 0: a transaction on every participant, and the work.
    let result: T;
    try {
      const clients = {} as Record<P, Transaction>;
      for (const p of all) {
        p.client = await connectGuarded(p.pool, p.onError);
        await p.client.query(resolved.beginSql);
        clients[p.name] = new Transaction({
          client: p.client as unknown as Transaction['client'],
          name: `${resolved.name}.${p.name}`,
          depth: 0,
          attempt: 1,
          db: p.pool,
          span,
          watchdog: undefined,
          signal: undefined,
        });
      }
      result = await fn(clients, { globalId });
    } catch (error) {
      await abort(error);
      throw error;
    }

    // Phase 1: PREPARE TRANSACTION everywhere.
    for (const p of all) {
      const prepare = phaseSpan(span, `prepare ${p.name}`);
      try {
        await (p.client as pg.PoolClient).query(`PREPARE TRANSACTION '${gidOf(globalId, p.name)}'`);
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
        if (!isConnectionLoss(error)) {
          release(p);
        }
        await abort(error);
        if (sqlStateOf(error) === '55000' && /prepared transactions are disabled/.test(String(error)))
          throw disabledError(p.name, error);
        throw new PgsightError(
          'PGSIGHT_ERR_2PC_ABORTED',
          `two-phase transaction ${globalId} rolled back: participant ${p.name} could not prepare (${sqlStateOf(error) ?? (error as Error).message})`,
          { cause: error },
        );
      }
    }
    await options.onPhase?.('prepared', globalId);

    // The decision, committed in the coordinator's log before anything is committed anywhere.
    let decision: 'commit' | 'rollback';
    try {
      // On a participant's session when the coordinator's pool is a participant's: asking that pool for a
      // connection now could wait behind sessions blocked on these very prepared transactions.
      const own = all.find((p) => p.pool === coordinator && p.client && !p.broken);
      decision = await decide(own?.client ?? coordinator, table, globalId, 'commit', names);
    } catch (error) {
      if (isConnectionLoss(error)) {
        // The decision may or may not be logged: recoverInDoubt reads the log and finishes it either way.
        end('unknown', error);
        throw new PgsightError(
          'PGSIGHT_ERR_TX_OUTCOME_UNKNOWN',
          `two-phase transaction ${globalId}: the coordinator was lost while logging the decision; recoverInDoubt resolves it`,
          { cause: error },
        );
      }
      await abort(error);
      throw new PgsightError(
        'PGSIGHT_ERR_2PC_ABORTED',
        `two-phase transaction ${globalId} rolled back: the decision could not be logged`,
        { cause: error },
      );
    }
    if (decision === 'rollback') {
      const error = new PgsightError(
        'PGSIGHT_ERR_2PC_ABORTED',
        `two-phase transaction ${globalId} rolled back: recovery decided before this coordinator did`,
      );
      await abort(error);
      throw error;
    }
    await options.onPhase?.('decided', globalId);

    // Phase 2: COMMIT PREPARED everywhere. Decided: retried, never rolled back.
    const left: string[] = [];
    for (const p of all) {
      const commit = phaseSpan(span, `commit ${p.name}`);
      for (let attempt = 1; ; attempt++) {
        try {
          await finishPrepared(p.pool, p.client, p.broken, 'COMMIT', gidOf(globalId, p.name));
          commit.end();
          break;
        } catch (error) {
          if (attempt >= commitAttempts) {
            commit.setStatus({ code: SpanStatusCode.ERROR, message: 'COMMIT PREPARED left to recovery' });
            commit.end();
            left.push(p.name);
            pgsightLogger().warn(
              {
                err: error,
                event: { action: 'db.transaction.commit_pending', dataset: 'pgsight.db', kind: 'event' },
                db: { transaction: { kind: 'two_phase', global_id: globalId, participant: p.name } },
              },
              `two-phase transaction ${globalId} is committed, but COMMIT PREPARED on ${p.name} failed ${attempt} times; recoverInDoubt will finish it`,
            );
            break;
          }
          await new Promise((resolve) =>
            setTimeout(resolve, backoffDelayMs(attempt, resolved.baseMs, resolved.maxMs)),
          );
        }
      }
    }
    for (const p of all) release(p);
    if (left.length === 0)
      await coordinator
        .query(`UPDATE ${table} SET completed_at = now() WHERE global_id = $1`, [globalId])
        .catch(() => {});
    end('committed');
    await options.onPhase?.('committed', globalId);
    return result;
  });
}

// ---- recoverInDoubt ----------------------------------------------------------------------------------------

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
  const table = options.logTable ?? 'pgsight_2pc_log';
  if (!TABLE.test(table)) invalid(`logTable must be a lower-case table name, got ${JSON.stringify(table)}`);
  const minAgeMs = options.minAgeMs ?? 10_000;
  const warnAfterMs = options.warnAfterMs ?? 60_000;
  registerGauge();
  // Dedicated connections throughout: the pools may be exhausted by sessions waiting on the locks of the
  // very transactions recovery is here to finish.
  return dedicated(coordinator, async (log) => {
    await ensureLog(coordinator, table, log);
    const report: RecoveryReport = { committed: [], rolledBack: [], skipped: [] };
    for (const name of Object.keys(participants) as P[]) {
      await dedicated(participants[name], async (participant) => {
        const { rows } = await participant.query<{ gid: string; prepared: Date; age_ms: number }>(
          `SELECT gid, prepared, (extract(epoch FROM now() - prepared) * 1000)::float8 AS age_ms
         FROM pg_prepared_xacts WHERE database = current_database() ORDER BY prepared`,
        );
        const ours = rows.filter((r) => r.gid.startsWith(GID_PREFIX) && r.gid.endsWith(`:${name}`));
        inDoubtCounts.set(name, ours.length);
        for (const row of ours) {
          const globalId = row.gid.slice(GID_PREFIX.length, -(name.length + 1));
          if (row.age_ms >= warnAfterMs)
            pgsightLogger().warn(
              {
                event: {
                  action: 'db.transaction.in_doubt',
                  dataset: 'pgsight.db',
                  kind: 'event',
                  duration: Math.round(row.age_ms * 1e6),
                },
                db: { transaction: { kind: 'two_phase', global_id: globalId, participant: name } },
              },
              `two-phase transaction ${globalId} has been prepared on ${name} for ${Math.round(row.age_ms / 1000)} s: it holds locks and blocks vacuum`,
            );
          const { rows: logged } = await log.query<{ decision: 'commit' | 'rollback' }>(
            `SELECT decision FROM ${table} WHERE global_id = $1`,
            [globalId],
          );
          let decision = logged[0]?.decision;
          if (!decision) {
            if (row.age_ms < minAgeMs) {
              report.skipped.push(row.gid);
              continue;
            }
            // Presumed abort, written first: a coordinator that decides later finds this and rolls back.
            decision = await decide(log, table, globalId, 'rollback', [name]);
          }
          await finish(participant, decision === 'commit' ? 'COMMIT' : 'ROLLBACK', row.gid);
          (decision === 'commit' ? report.committed : report.rolledBack).push(row.gid);
          inDoubtCounts.set(name, (inDoubtCounts.get(name) ?? 1) - 1);
          pgsightLogger().info(
            {
              event: { action: 'db.transaction.recovered', dataset: 'pgsight.db', kind: 'event' },
              db: {
                transaction: {
                  kind: 'two_phase',
                  global_id: globalId,
                  participant: name,
                  outcome: decision === 'commit' ? 'committed' : 'rolled_back',
                },
              },
            },
            `recovered two-phase transaction ${globalId} on ${name}: ${decision === 'commit' ? 'committed' : 'rolled back'}`,
          );
        }
      });
    }
    // Decided commits whose every participant is now done.
    if (report.committed.length > 0)
      await log.query(
        `UPDATE ${table} SET completed_at = now() WHERE decision = 'commit' AND completed_at IS NULL AND global_id = ANY($1)`,
        [[...new Set(report.committed.map((gid) => gid.slice(GID_PREFIX.length, gid.lastIndexOf(':'))))]],
      );
    return report;
  });
}
