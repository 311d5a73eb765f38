// twoPhaseCommit and recoverInDoubt across two real databases of one PostgreSQL: commits, aborts, the
// process killed at each step and recovered, recovery racing live transfers. Money is conserved throughout.
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PgsightError } from '../src/errors.js';
import { createTestSchema, type TestSchema } from '../src/testing/schema.js';
import { GID_PREFIX, recoverInDoubt, twoPhaseCommit } from '../src/transaction/two-phase/index.js';
import { byAction, captureRecords } from './support/capture-logger.js';
import { databaseUrl } from './support/db.js';
import { field, fixture, runNode } from './support/run-node.js';
import { preparedTransactionsEnabled, secondDatabaseUrl } from './support/second-database.js';

let dbA: TestSchema;
let dbB: TestSchema;
let a: pg.Pool;
let b: pg.Pool;
let records: Record<string, unknown>[];
const spans = new InMemorySpanExporter();
/** Collects on demand, as an exporter's reader would on its interval. */
class OnDemandReader extends MetricReader {
  protected override onForceFlush = async () => {};
  protected override onShutdown = async () => {};
}
const reader = new OnDemandReader();
async function gauge(name: string): Promise<Record<string, number>> {
  const { resourceMetrics } = await reader.collect();
  const points: Record<string, number> = {};
  for (const scope of resourceMetrics.scopeMetrics)
    for (const metric of scope.metrics)
      if (metric.descriptor.name === name)
        for (const point of metric.dataPoints)
          points[String(point.attributes['db.transaction.participant'])] = point.value as number;
  return points;
}

beforeAll(async () => {
  await preparedTransactionsEnabled(); // fails, with the instruction, when they are off: never skipped
  const urlB = await secondDatabaseUrl();
  dbA = await createTestSchema({ name: 'tpc_a', pool: { max: 12 } });
  dbB = await createTestSchema({ name: 'tpc_b', databaseUrl: urlB, pool: { max: 12 } });
  a = dbA.pool;
  b = dbB.pool;
  for (const pool of [a, b]) {
    await pool.query(
      'CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0))',
    );
    await pool.query('CREATE TABLE guard (v int UNIQUE DEFERRABLE INITIALLY DEFERRED)');
  }
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(
    new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: spans })] }),
  );
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
});
afterAll(async () => {
  // Nothing of these tests may stay prepared: it would hold locks on the server for good.
  await recoverInDoubt({ coordinator: a, participants: { a, b }, options: { minAgeMs: 0 } });
  await dbA.drop();
  await dbB.drop();
});
beforeEach(async () => {
  // A test that failed half-way may have left prepared transactions: their locks would block TRUNCATE.
  await recoverInDoubt({ coordinator: a, participants: { a, b }, options: { minAgeMs: 0 } });
  records = captureRecords();
  spans.reset();
  for (const pool of [a, b]) {
    await pool.query('TRUNCATE accounts, guard');
    await pool.query('INSERT INTO accounts SELECT id, 1000 FROM generate_series(1, 5) AS id');
  }
});

const balances = async () => ({
  a: (await a.query('SELECT id, balance::int FROM accounts ORDER BY id')).rows.map((r) => r.balance),
  b: (await b.query('SELECT id, balance::int FROM accounts ORDER BY id')).rows.map((r) => r.balance),
});
const total = async () => {
  const { a: inA, b: inB } = await balances();
  return [...inA, ...inB].reduce((sum, v) => sum + v, 0);
};
const prepared = async (pool: pg.Pool) =>
  (
    await pool.query<{ gid: string }>(
      'SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND starts_with(gid, $1)',
      [GID_PREFIX],
    )
  ).rows.map((r) => r.gid);

const move = (from: 'a' | 'b', amount: number, options = {}) =>
  twoPhaseCommit({
    coordinator: a,
    participants: { a, b },
    fn: async (tx) => {
      // Always a, then b, whatever the direction: PostgreSQL cannot see a deadlock that runs through this
      // process from one database to the other, so the order of the row locks must rule it out.
      const delta = from === 'a' ? -amount : amount;
      await tx.a.query('UPDATE accounts SET balance = balance + $1 WHERE id = 1', [delta]);
      await tx.b.query('UPDATE accounts SET balance = balance - $1 WHERE id = 1', [delta]);
      return amount;
    },
    options: { name: 'interledger', ...options },
  });

describe('twoPhaseCommit', () => {
  it('commits on both databases, logs the decision, and records the two-phase transaction', async () => {
    expect(await move('a', 100)).toBe(100);
    expect(await balances()).toEqual({ a: [900, 1000, 1000, 1000, 1000], b: [1100, 1000, 1000, 1000, 1000] });
    expect([...(await prepared(a)), ...(await prepared(b))]).toEqual([]);
    const [end] = byAction(records, 'db.transaction.end');
    const globalId = field(end ?? {}, 'db.transaction.global_id') as string;
    expect(end).toMatchObject({
      db: { transaction: { kind: 'two_phase', outcome: 'committed', name: 'interledger' } },
    });
    const { rows } = await a.query(
      'SELECT decision, completed_at FROM pgsight_2pc_log WHERE global_id = $1',
      [globalId],
    );
    expect(rows).toEqual([{ decision: 'commit', completed_at: expect.any(Date) }]);
    // One parent span, a child per participant per phase.
    const finished = spans.getFinishedSpans();
    const parent = finished.find((s) => s.name === 'db.transaction interledger');
    expect(parent?.attributes).toMatchObject({
      'db.transaction.kind': 'two_phase',
      'db.transaction.global_id': globalId,
    });
    const children = finished
      .filter((s) => s.parentSpanContext?.spanId === parent?.spanContext().spanId)
      .map((s) => s.name);
    expect(children.sort()).toEqual(['commit a', 'commit b', 'prepare a', 'prepare b']);
  });

  it('rolls back everywhere when fn throws, and rethrows its error', async () => {
    const failure = new Error('business rule');
    await expect(
      twoPhaseCommit({
        coordinator: a,
        participants: { a, b },
        fn: async (tx) => {
          await tx.a.query('UPDATE accounts SET balance = 0 WHERE id = 1');
          throw failure;
        },
      }),
    ).rejects.toBe(failure);
    expect((await balances()).a[0]).toBe(1000);
    expect(byAction(records, 'db.transaction.end')[0]).toMatchObject({
      db: { transaction: { outcome: 'rolled_back' } },
    });
  });

  it('a participant that fails during PREPARE: every participant is rolled back, nothing stays prepared', async () => {
    const error = await twoPhaseCommit({
      coordinator: a,
      participants: { a, b },
      fn: async (tx) => {
        await tx.a.query('UPDATE accounts SET balance = balance - 100 WHERE id = 1');
        await tx.b.query('UPDATE accounts SET balance = balance + 100 WHERE id = 1');
        // A deferred unique constraint is checked at PREPARE TRANSACTION: b fails there, after a prepared.
        await tx.b.query('INSERT INTO guard VALUES (1), (1)');
      },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PgsightError);
    expect(error).toMatchObject({ code: 'PGSIGHT_ERR_2PC_ABORTED', cause: { code: '23505' } });
    expect(String((error as Error).message)).toContain('participant b could not prepare');
    expect(await balances()).toEqual({
      a: [1000, 1000, 1000, 1000, 1000],
      b: [1000, 1000, 1000, 1000, 1000],
    });
    expect([...(await prepared(a)), ...(await prepared(b))]).toEqual([]);
  });

  it('rejects bad arguments before touching a database', async () => {
    const call = (request: Record<string, unknown>) =>
      twoPhaseCommit({ coordinator: a, participants: { a, b }, fn: async () => {}, ...request } as never);
    await expect(call({ participants: { 'a-b': a } })).rejects.toMatchObject({
      code: 'PGSIGHT_ERR_ARGUMENT_INVALID',
    });
    await expect(call({ participants: { a: 'postgres://x' } })).rejects.toThrow(
      /participants.a must be a pg Pool/,
    );
    await expect(call({ participants: {} })).rejects.toThrow(/at least one/);
    await expect(call({ options: { logTable: 'x; DROP TABLE y' } })).rejects.toThrow(/logTable/);
  });
});

describe('killed mid-way, then recovered', () => {
  async function killedAfter(phase: 'prepared' | 'decided') {
    const run = await runNode(fixture('two-phase-app.mjs'), {
      args: [],
      env: {
        DB_A: databaseUrl,
        DB_B: await secondDatabaseUrl(),
        SCHEMA_A: dbA.schema,
        SCHEMA_B: dbB.schema,
        KILL_AFTER: phase,
        AMOUNT: '250',
      },
    });
    expect(run.signal, run.stderr).toBe('SIGKILL');
    return run.records.find((r) => r.phase === phase)?.globalId as string;
  }

  it('after PREPARE, before the decision: recovery rolls back on both', async () => {
    const globalId = await killedAfter('prepared');
    expect(await prepared(a)).toEqual([`${GID_PREFIX}${globalId}:a`]);
    expect(await prepared(b)).toEqual([`${GID_PREFIX}${globalId}:b`]);
    expect(await total()).toBe(10_000); // prepared work is invisible until committed

    const report = await recoverInDoubt({ coordinator: a, participants: { a, b }, options: { minAgeMs: 0 } });
    expect(report.rolledBack.sort()).toEqual([`${GID_PREFIX}${globalId}:a`, `${GID_PREFIX}${globalId}:b`]);
    expect(await balances()).toEqual({
      a: [1000, 1000, 1000, 1000, 1000],
      b: [1000, 1000, 1000, 1000, 1000],
    });
    expect([...(await prepared(a)), ...(await prepared(b))]).toEqual([]);
    const { rows } = await a.query('SELECT decision FROM pgsight_2pc_log WHERE global_id = $1', [globalId]);
    expect(rows).toEqual([{ decision: 'rollback' }]);
  });

  it('after the decision, before COMMIT PREPARED: recovery commits on both', async () => {
    const globalId = await killedAfter('decided');
    expect((await prepared(a)).length + (await prepared(b)).length).toBe(2);
    const report = await recoverInDoubt({ coordinator: a, participants: { a, b }, options: { minAgeMs: 0 } });
    expect(report.committed.sort()).toEqual([`${GID_PREFIX}${globalId}:a`, `${GID_PREFIX}${globalId}:b`]);
    expect(await balances()).toEqual({ a: [750, 1000, 1000, 1000, 1000], b: [1250, 1000, 1000, 1000, 1000] });
    expect(await total()).toBe(10_000);
    expect(byAction(records, 'db.transaction.recovered')).toHaveLength(2);
  });

  it('leaves young ones to their coordinator, warns about old ones, and reports them in the gauge', async () => {
    const globalId = await killedAfter('prepared');
    const report = await recoverInDoubt({
      coordinator: a,
      participants: { a, b },
      options: { minAgeMs: 60_000, warnAfterMs: 0 },
    });
    expect(report.skipped).toHaveLength(2);
    expect(await prepared(a)).toHaveLength(1);
    const warnings = byAction(records, 'db.transaction.in_doubt');
    expect(warnings.map((w) => field(w, 'db.transaction.global_id'))).toEqual([globalId, globalId]);
    expect(warnings[0]).toMatchObject({ 'log.level': 'warn' });
    expect(await gauge('pgsight.db.transaction.in_doubt')).toEqual({ a: 1, b: 1 });
    await recoverInDoubt({ coordinator: a, participants: { a, b }, options: { minAgeMs: 0 } });
    expect(await gauge('pgsight.db.transaction.in_doubt')).toEqual({ a: 0, b: 0 });
    expect(await total()).toBe(10_000);
  });
});

describe('recovery next to live work', () => {
  it('transfers and recovery racing: every transfer commits or rolls back whole; money is conserved', async () => {
    let recovering = true;
    const recoveries = (async () => {
      let runs = 0;
      while (recovering) {
        // minAgeMs 0: recovery may decide 'rollback' for a transfer between its PREPARE and its decision
        await recoverInDoubt({ coordinator: a, participants: { a, b }, options: { minAgeMs: 0 } });
        runs++;
      }
      return runs;
    })();
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        move(i % 2 === 0 ? 'a' : 'b', 10 + (i % 7)).then(
          (amount) => ({ ok: true, code: '', amount, from: i % 2 === 0 ? 'a' : 'b' }),
          (error: PgsightError) => ({ ok: false, code: String(error.code), amount: 0, from: '' }),
        ),
      ),
    );
    recovering = false;
    expect(await recoveries).toBeGreaterThan(0);
    await recoverInDoubt({ coordinator: a, participants: { a, b }, options: { minAgeMs: 0 } });

    expect([...(await prepared(a)), ...(await prepared(b))]).toEqual([]);
    expect(await total()).toBe(10_000);
    // Account 1 on each side moved by exactly the committed transfers.
    const net = outcomes
      .filter((o) => o.ok)
      .reduce((sum, o) => sum + (o.from === 'a' ? -o.amount : o.amount), 0);
    const { a: inA, b: inB } = await balances();
    expect(inA[0]).toBe(1000 + net);
    expect(inB[0]).toBe(1000 - net);
    for (const failed of outcomes.filter((o) => !o.ok)) expect(failed.code).toBe('PGSIGHT_ERR_2PC_ABORTED');
    expect(outcomes.filter((o) => o.ok).length).toBeGreaterThan(0);
  });
});
