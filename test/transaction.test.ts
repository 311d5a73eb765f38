// transaction(): commit/rollback, options, savepoints, retries under real contention, outcome unknown,
// broken clients, abort, hooks and the watchdog, against a real PostgreSQL.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PgsightError } from '../src/errors.js';
import { createTestSchema, type TestSchema } from '../src/testing/schema.js';
import { lockRows } from '../src/transaction/lock-rows.js';
import {
  currentTransaction,
  getCurrentTransaction,
  type Transaction,
  transaction,
} from '../src/transaction/transaction.js';
import { clearOriginCache, setWatchdogThresholds } from '../src/transaction/watchdog.js';
import { byAction, captureRecords } from './support/capture-logger.js';
import { databaseUrl } from './support/db.js';
import { field } from './support/run-node.js';

let db: TestSchema;
let pool: pg.Pool;
let records: Record<string, unknown>[];
const fast = { backoff: { baseMs: 1, maxMs: 5 } };

beforeAll(async () => {
  db = await createTestSchema({ name: 'tx', pool: { max: 10, options: '' } });
  pool = db.pool;
  await pool.query(`
    CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0));
    CREATE TABLE counter (id int PRIMARY KEY, value int NOT NULL);
    CREATE TABLE events (id serial PRIMARY KEY, note text NOT NULL);
  `);
});
afterAll(() => db.drop());
beforeEach(async () => {
  records = captureRecords();
  setWatchdogThresholds({ warnMs: 0, idleMs: 0 });
  await pool.query(
    'TRUNCATE accounts, counter, events; INSERT INTO accounts VALUES (1, 100), (2, 100); INSERT INTO counter VALUES (1, 0)',
  );
});

const balances = async () => (await pool.query('SELECT id, balance::int FROM accounts ORDER BY id')).rows;
/** Raise a real server error with the given SQLSTATE. */
const raise = (tx: { query: pg.ClientBase['query'] }, code: string) =>
  tx.query(`DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '${code}'; END $$`);

describe('commit and rollback', () => {
  it('commits and returns the function value; the client goes back to the pool', async () => {
    const value = await transaction(pool, async (tx) => {
      await tx.query('UPDATE accounts SET balance = balance - 10 WHERE id = 1');
      await tx.query('UPDATE accounts SET balance = balance + 10 WHERE id = 2');
      return 'moved';
    });
    expect(value).toBe('moved');
    expect(await balances()).toEqual([
      { id: 1, balance: 90 },
      { id: 2, balance: 110 },
    ]);
    expect(pool.idleCount).toBe(pool.totalCount);
    expect(byAction(records, 'db.transaction.end')[0]).toMatchObject({
      'log.level': 'debug',
      db: { transaction: { name: 'transaction', outcome: 'committed', attempt: 1 } },
    });
  });

  it('rolls back on a throw and rethrows the original error', async () => {
    const boom = new Error('boom');
    await expect(
      transaction(pool, async (tx) => {
        await tx.query('UPDATE accounts SET balance = 0 WHERE id = 1');
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await balances()).toEqual([
      { id: 1, balance: 100 },
      { id: 2, balance: 100 },
    ]);
    expect(byAction(records, 'db.transaction.end')[0]).toMatchObject({
      'log.level': 'info',
      db: { transaction: { outcome: 'rolled_back' } },
    });
  });

  it('rolls back a constraint violation (the check balance >= 0) and rethrows it with its SQLSTATE', async () => {
    await expect(
      transaction(pool, (tx) => tx.query('UPDATE accounts SET balance = balance - 1000 WHERE id = 1')),
    ).rejects.toMatchObject({ code: '23514' });
    expect(await balances()).toEqual([
      { id: 1, balance: 100 },
      { id: 2, balance: 100 },
    ]);
  });

  it('works on a plain pg.Client too', async () => {
    const client = new pg.Client({ connectionString: databaseUrl, options: `-c search_path=${db.schema}` });
    await client.connect();
    try {
      await transaction(client, (tx) => tx.query('UPDATE accounts SET balance = 1 WHERE id = 1'));
      await expect(transaction(client, async () => Promise.reject(new Error('no')))).rejects.toThrow('no');
      expect((await client.query('SELECT balance::int FROM accounts WHERE id = 1')).rows[0].balance).toBe(1);
    } finally {
      await client.end();
    }
  });
});

describe('options', () => {
  it('puts isolation level, READ ONLY and DEFERRABLE into BEGIN, and applies the timeouts with SET LOCAL', async () => {
    const seen = await transaction(
      pool,
      async (tx) => {
        const q = async (setting: string) => (await tx.query(`SHOW ${setting}`)).rows[0][setting];
        return [
          await q('transaction_isolation'),
          await q('transaction_read_only'),
          await q('transaction_deferrable'),
          await q('statement_timeout'),
          await q('lock_timeout'),
          await q('idle_in_transaction_session_timeout'),
        ];
      },
      {
        isolationLevel: 'serializable',
        readOnly: true,
        deferrable: true,
        statementTimeoutMs: 1500,
        lockTimeoutMs: 250,
        idleInTransactionTimeoutMs: 60000,
      },
    );
    expect(seen).toEqual(['serializable', 'on', 'on', '1500ms', '250ms', '1min']);
    // SET LOCAL ended with the transaction.
    expect((await pool.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('0');
  });

  it('rejects invalid options with one clear PgsightError, before connecting', async () => {
    const fresh = new pg.Pool({ connectionString: databaseUrl });
    let thrown: unknown;
    try {
      await transaction(fresh, async () => 1, {
        // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong
        isolationLevel: 'SERIALIZABLE' as any,
        maxAttempts: 0,
        backoff: { baseMs: 10, maxMs: 5 },
        retryOn: ['4000'],
        statementTimeoutMs: -1,
        // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong
        ...({ isolation: 'x' } as any),
      });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(PgsightError);
    const message = (thrown as PgsightError).message;
    expect((thrown as PgsightError).code).toBe('PGSIGHT_ERR_ARGUMENT_INVALID');
    for (const part of [
      'unknown option "isolation"',
      'isolationLevel must be one of',
      'maxAttempts',
      'backoff.maxMs',
      'retryOn',
      'statementTimeoutMs',
    ])
      expect(message).toContain(part);
    expect(fresh.totalCount).toBe(0);
    await fresh.end();
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong
    await expect(transaction({} as any, async () => 1)).rejects.toMatchObject({
      code: 'PGSIGHT_ERR_ARGUMENT_INVALID',
    });
  });
});

describe('savepoints', () => {
  it('a throw inside a nested transaction rolls back to the savepoint; the outer one carries on and commits', async () => {
    await transaction(pool, async (tx) => {
      await tx.query('UPDATE accounts SET balance = 50 WHERE id = 1');
      await expect(
        transaction(tx, async (inner) => {
          expect(inner.depth).toBe(1);
          await inner.query('UPDATE accounts SET balance = 0 WHERE id = 2');
          throw new Error('inner failed');
        }),
      ).rejects.toThrow('inner failed');
      await tx.query("INSERT INTO events (note) VALUES ('after savepoint')");
    });
    expect(await balances()).toEqual([
      { id: 1, balance: 50 },
      { id: 2, balance: 100 },
    ]);
    expect((await pool.query('SELECT note FROM events')).rows).toEqual([{ note: 'after savepoint' }]);
  });

  it('transaction(pool) inside a running transaction nests on the same connection (AsyncLocalStorage)', async () => {
    await transaction(pool, async (outer) => {
      const outerPid = (await outer.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      await transaction(pool, async (inner) => {
        expect(getCurrentTransaction()).toBe(inner);
        expect((await inner.query('SELECT pg_backend_pid() AS pid')).rows[0].pid).toBe(outerPid);
        await inner.query('UPDATE accounts SET balance = 77 WHERE id = 1');
      });
      expect(currentTransaction()).toBe(outer);
    });
    expect((await balances())[0]).toEqual({ id: 1, balance: 77 });
    expect(() => currentTransaction()).toThrow(expect.objectContaining({ code: 'PGSIGHT_ERR_TX_NONE' }));
  });
});

describe('retries', () => {
  it('concurrent SERIALIZABLE read-modify-writes raise real 40001s, are retried, and end in the right state', async () => {
    const workers = 8;
    const attempts: number[] = [];
    await Promise.all(
      Array.from({ length: workers }, () =>
        transaction(
          pool,
          async (tx) => {
            attempts.push(tx.attempt);
            const { rows } = await tx.query('SELECT value FROM counter WHERE id = 1');
            await sleep(5); // widen the window so the transactions really overlap
            await tx.query('UPDATE counter SET value = $1 WHERE id = 1', [rows[0].value + 1]);
          },
          {
            isolationLevel: 'serializable',
            maxAttempts: 50,
            backoff: { baseMs: 5, maxMs: 50 },
            name: 'increment',
          },
        ),
      ),
    );
    expect((await pool.query('SELECT value FROM counter')).rows[0].value).toBe(workers);
    const retries = byAction(records, 'db.transaction.retry');
    expect(retries.length).toBeGreaterThan(0);
    expect(retries.length).toBe(attempts.length - workers);
    expect(retries[0]).toMatchObject({
      'log.level': 'warn',
      db: {
        response: { status_code: '40001' },
        transaction: { name: 'increment', isolation_level: 'serializable' },
      },
    });
    expect(typeof field(retries[0], 'db.transaction.retry_delay_ms')).toBe('number');
  });

  it('two transactions locking rows in opposite order raise a real 40P01, and both complete after the retry', async () => {
    let arrived = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const deadlockPool = new pg.Pool({
      connectionString: databaseUrl,
      options: `-c search_path=${db.schema} -c deadlock_timeout=50ms`,
    });
    const run = (first: number, second: number) =>
      transaction(
        deadlockPool,
        async (tx) => {
          await tx.query('SELECT * FROM accounts WHERE id = $1 FOR UPDATE', [first]);
          if (tx.attempt === 1) {
            if (++arrived === 2) release();
            await gate;
          }
          await tx.query('SELECT * FROM accounts WHERE id = $1 FOR UPDATE', [second]);
          await tx.query('UPDATE accounts SET balance = balance - 1 WHERE id = $1', [first]);
          await tx.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [second]);
        },
        fast,
      );
    try {
      await Promise.all([run(1, 2), run(2, 1)]);
    } finally {
      await deadlockPool.end();
    }
    expect(await balances()).toEqual([
      { id: 1, balance: 100 },
      { id: 2, balance: 100 },
    ]);
    // At least one real deadlock, and nothing but deadlocks retried: the server may pick a victim again
    // when the retried attempt meets the other transaction before it commits.
    const retried = byAction(records, 'db.transaction.retry').map(
      (r) => (r.db as { response: { status_code: string } }).response.status_code,
    );
    expect(retried.length).toBeGreaterThanOrEqual(1);
    expect(new Set(retried)).toEqual(new Set(['40P01']));
    expect(
      byAction(records, 'db.transaction.end').map(
        (r) => (r.db as { transaction: { outcome: string } }).transaction.outcome,
      ),
    ).toEqual(['committed', 'committed']);
  });

  it('the same workload through lockRows never deadlocks', async () => {
    let arrived = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const run = (first: number, second: number) =>
      transaction(
        pool,
        async (tx) => {
          // Both ask for [first, second]; lockRows takes them in key order, so the second waits instead.
          const locked = lockRows(tx, `${db.schema}.accounts`, [first, second], { mode: 'no key update' });
          if (++arrived === 2) release();
          const rows = await locked;
          expect(rows.map((r) => r.id)).toEqual([1, 2]);
          await gate;
          await tx.query('UPDATE accounts SET balance = balance - 1 WHERE id = $1', [first]);
          await tx.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [second]);
        },
        fast,
      );
    await Promise.all([run(1, 2), run(2, 1)]);
    expect(byAction(records, 'db.transaction.retry')).toEqual([]);
    expect(await balances()).toEqual([
      { id: 1, balance: 100 },
      { id: 2, balance: 100 },
    ]);
  });

  it('raises PGSIGHT_ERR_TX_RETRIES_EXHAUSTED with every SQLSTATE and the last error as cause', async () => {
    let calls = 0;
    let thrown: unknown;
    try {
      await transaction(
        pool,
        async (tx) => {
          calls++;
          await raise(tx, calls % 2 ? '40001' : '40P01');
        },
        { ...fast, maxAttempts: 3, name: 'doomed' },
      );
    } catch (error) {
      thrown = error;
    }
    expect(calls).toBe(3);
    expect(thrown).toMatchObject({
      code: 'PGSIGHT_ERR_TX_RETRIES_EXHAUSTED',
      details: ['40001', '40P01', '40001'],
    });
    expect((thrown as Error).cause).toMatchObject({ code: '40001' });
    expect(byAction(records, 'db.transaction.end')[0]).toMatchObject({
      db: { transaction: { outcome: 'retries_exhausted', attempt: 3 } },
    });
  });

  it('never re-runs on other errors, nor a savepoint alone: only the outermost transaction, from the start', async () => {
    const runs: string[] = [];
    await transaction(
      pool,
      async (tx) => {
        runs.push('outer');
        await transaction(tx, async (inner) => {
          runs.push('inner');
          if (inner.attempt === 1) await raise(inner, '40001');
        }).catch((error) => {
          throw error; // propagates to the outermost, which retries everything
        });
      },
      fast,
    );
    expect(runs).toEqual(['outer', 'inner', 'outer', 'inner']);
    await expect(transaction(pool, (tx) => raise(tx, '23505'), fast)).rejects.toMatchObject({
      code: '23505',
    });
    expect(byAction(records, 'db.transaction.retry')).toHaveLength(1);
  });

  it('afterCommit runs exactly once across retries; afterRollback once on the final rollback', async () => {
    const committed: number[] = [];
    await transaction(
      pool,
      async (tx) => {
        tx.afterCommit(() => committed.push(tx.attempt));
        await transaction(tx, async (inner) => inner.afterCommit(() => committed.push(100 + inner.attempt)));
        if (tx.attempt < 3) await raise(tx, '40001');
      },
      fast,
    );
    expect(committed).toEqual([3, 103]);

    const rolledBack: number[] = [];
    await expect(
      transaction(
        pool,
        async (tx) => {
          tx.afterRollback(() => rolledBack.push(tx.attempt));
          tx.afterCommit(() => rolledBack.push(-1));
          await raise(tx, '40001');
        },
        { ...fast, maxAttempts: 2 },
      ),
    ).rejects.toMatchObject({ code: 'PGSIGHT_ERR_TX_RETRIES_EXHAUSTED' });
    expect(rolledBack).toEqual([2]);
  });
});

describe('hooks and lock options', () => {
  it('a throwing afterCommit hook is logged and does not change the result', async () => {
    const ran: string[] = [];
    const value = await transaction(
      pool,
      async (tx) => {
        tx.afterCommit(() => {
          throw new Error('publisher down');
        });
        tx.afterCommit(() => ran.push('second hook'));
        return 'committed anyway';
      },
      { name: 'publish' },
    );
    expect(value).toBe('committed anyway');
    expect(ran).toEqual(['second hook']);
    expect(byAction(records, 'db.transaction.after_commit_hook_failed')[0]).toMatchObject({
      'log.level': 'error',
      db: { transaction: { name: 'publish' } },
      error: { message: 'publisher down' },
    });
  });

  it('lockRows with nowait fails at once on a locked row (55P03); skipLocked returns the free rows', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => {
      locked = resolve;
    });
    const holder = transaction(pool, async (tx) => {
      await lockRows(tx, `${db.schema}.accounts`, [1]);
      locked();
      await held;
    });
    await isLocked;
    await expect(
      transaction(pool, (tx) => lockRows(tx, `${db.schema}.accounts`, [1, 2], { nowait: true })),
    ).rejects.toMatchObject({ code: '55P03' });
    const free = await transaction(pool, (tx) =>
      lockRows(tx, `${db.schema}.accounts`, [1, 2], { skipLocked: true }),
    );
    expect(free.map((r) => r.id)).toEqual([2]);
    release();
    await holder;
    await expect(
      transaction(pool, (tx) => lockRows(tx, 'accounts', [1], { nowait: true, skipLocked: true })),
    ).rejects.toMatchObject({ code: 'PGSIGHT_ERR_ARGUMENT_INVALID' });
  });
});

describe('broken connections', () => {
  /** A one-connection pool on the test schema, and a second connection to terminate its backend with. */
  async function poolAndKiller() {
    const local = new pg.Pool({
      connectionString: databaseUrl,
      options: `-c search_path=${db.schema}`,
      max: 1,
    });
    const killer = new pg.Client({ connectionString: databaseUrl });
    await killer.connect();
    return { local, killer };
  }

  it('connection lost after COMMIT was sent: PGSIGHT_ERR_TX_OUTCOME_UNKNOWN, never re-run, client destroyed', async () => {
    const { local, killer } = await poolAndKiller();
    let runs = 0;
    let thrown: unknown;
    try {
      await transaction(local, async (tx) => {
        runs++;
        await tx.query('UPDATE accounts SET balance = 42 WHERE id = 1');
        const { pid } = (await tx.query('SELECT pg_backend_pid() AS pid')).rows[0];
        // The last statement has run; the backend dies before COMMIT reaches it.
        await killer.query('SELECT pg_terminate_backend($1)', [pid]);
        await sleep(100);
      });
    } catch (error) {
      thrown = error;
    }
    expect(runs).toBe(1);
    expect(thrown).toMatchObject({ code: 'PGSIGHT_ERR_TX_OUTCOME_UNKNOWN' });
    expect((thrown as Error).cause).toBeInstanceOf(Error);
    expect(byAction(records, 'db.transaction.end')[0]).toMatchObject({
      db: { transaction: { outcome: 'unknown' } },
    });
    // The broken client was destroyed, not pooled: the next transaction gets a fresh, working connection.
    expect(local.totalCount).toBe(0);
    await transaction(local, (tx) => tx.query('SELECT 1'));
    expect(await balances()).toEqual([
      { id: 1, balance: 100 },
      { id: 2, balance: 100 },
    ]);
    await killer.end();
    await local.end();
  });

  it('a client whose connection broke mid-transaction is destroyed, and the app does not crash', async () => {
    const { local, killer } = await poolAndKiller();
    await expect(
      transaction(local, async (tx) => {
        const { pid } = (await tx.query('SELECT pg_backend_pid() AS pid')).rows[0];
        await killer.query('SELECT pg_terminate_backend($1)', [pid]);
        await sleep(100);
        await tx.query('SELECT 1');
      }),
    ).rejects.toThrow();
    expect(local.totalCount).toBe(0);
    expect((await local.query('SELECT 1 AS ok')).rows[0].ok).toBe(1);
    await killer.end();
    await local.end();
  });
});

describe('abort', () => {
  it('aborting rolls back, sends nothing more, and rejects with PGSIGHT_ERR_TX_ABORTED', async () => {
    const controller = new AbortController();
    await expect(
      transaction(
        pool,
        async (tx) => {
          await tx.query('UPDATE accounts SET balance = 1 WHERE id = 1');
          controller.abort(new Error('client went away'));
          await tx.query('UPDATE accounts SET balance = 1 WHERE id = 2');
        },
        { signal: controller.signal },
      ),
    ).rejects.toMatchObject({ code: 'PGSIGHT_ERR_TX_ABORTED', cause: new Error('client went away') });
    expect(await balances()).toEqual([
      { id: 1, balance: 100 },
      { id: 2, balance: 100 },
    ]);
    // Already aborted: nothing is sent at all.
    const fresh = new pg.Pool({ connectionString: databaseUrl });
    await expect(transaction(fresh, async () => 1, { signal: controller.signal })).rejects.toMatchObject({
      code: 'PGSIGHT_ERR_TX_ABORTED',
    });
    expect(fresh.totalCount).toBe(0);
    await fresh.end();
  });
});

describe('watchdog', () => {
  it('logs an idle transaction once, naming the line that opened it', async () => {
    setWatchdogThresholds({ warnMs: 0, idleMs: 100 });
    await transaction(
      pool,
      async (tx) => {
        await tx.query('SELECT 1');
        await sleep(300); // an HTTP call made inside the transaction
        await tx.query('SELECT 1');
      },
      { name: 'checkout' }, // the transaction opened on the line of `await transaction(` above
    );
    const idle = byAction(records, 'db.transaction.idle');
    expect(idle).toHaveLength(1);
    const origin = field(idle[0], 'log.origin') as { file: { name: string; line: number } };
    // A path relative to the working directory, not a file:// URL (ECS's log.origin.file.name).
    expect(origin.file.name).toBe('test/transaction.test.ts');
    const source = readFileSync(new URL(import.meta.url), 'utf8').split('\n');
    const marker = source.findIndex((line) =>
      line.includes("{ name: 'checkout' }, // the transaction opened"),
    );
    const callLine = source.slice(0, marker).findLastIndex((line) => line.includes('await transaction(')) + 1;
    expect(origin.file.line).toBe(callLine);
    expect(idle[0]).toMatchObject({ 'log.level': 'warn', db: { transaction: { name: 'checkout' } } });
    expect(field(idle[0], 'db.transaction.idle_ms')).toBeGreaterThanOrEqual(100);
    expect(String(field(idle[0], 'code.stacktrace'))).toContain('transaction.test.ts');
  });

  it.each(['cached', 'exact'] as const)(
    'names the place that opened each transaction, one function opened from several places (origin %s)',
    async (origin) => {
      clearOriginCache();
      setWatchdogThresholds({ warnMs: 0, idleMs: 50, origin });
      const idle = async (tx: Transaction) => {
        await tx.query('SELECT 1');
        await sleep(130);
      };
      await transaction(pool, idle); // site-A
      for (let i = 0; i < 3; i++) await transaction(pool, idle); // site-B
      const again = async (tx: Transaction) => {
        await tx.query('SELECT 2');
        await sleep(130);
      };
      for (let i = 0; i < 4; i++) await transaction(pool, again); // site-C
      const source = readFileSync(new URL(import.meta.url), 'utf8').split('\n');
      const lineOf = (marker: string) => source.findIndex((line) => line.endsWith(marker)) + 1;
      const lines = byAction(records, 'db.transaction.idle').map((r) => field(r, 'log.origin.file.line'));
      const [a, b, c] = [lineOf('// site-A'), lineOf('// site-B'), lineOf('// site-C')];
      expect(lines).toEqual([a, b, b, b, c, c, c, c]);
    },
  );

  it('does not call a transaction idle while its query runs', async () => {
    setWatchdogThresholds({ warnMs: 0, idleMs: 100 });
    await transaction(pool, (tx) => tx.query('SELECT pg_sleep(0.3)'));
    expect(byAction(records, 'db.transaction.idle')).toEqual([]);
  });

  it('logs a long transaction once', async () => {
    setWatchdogThresholds({ warnMs: 150, idleMs: 0 });
    await transaction(pool, (tx) => tx.query('SELECT pg_sleep(0.35)'), { name: 'report' });
    const long = byAction(records, 'db.transaction.long');
    expect(long).toHaveLength(1);
    expect(long[0]).toMatchObject({
      db: { transaction: { name: 'report' } },
      log: { origin: { file: { name: expect.stringMatching(/transaction\.test\.ts$/) } } },
    });
    expect(field(long[0], 'event.duration')).toBeGreaterThan(0);
  });
});
