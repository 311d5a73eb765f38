// The @transactional decorator (TC39 standard decorators) and pgsight/testing's helpers.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestSchema, type TestSchema } from '../src/testing/index.js';
import { currentTransaction } from '../src/transaction/transaction.js';
import { transactional } from '../src/transaction/transactional.js';
import { setWatchdogThresholds } from '../src/transaction/watchdog.js';
import { captureRecords } from './support/capture-logger.js';
import { field } from './support/run-node.js';

let db: TestSchema;

beforeAll(async () => {
  db = await createTestSchema({ name: 'decorator' });
  await db.pool.query('CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)');
});
afterAll(() => db.drop());
beforeEach(() => {
  captureRecords(); // keep this file's records out of the test output
});

class NotesService {
  constructor(readonly pool: pg.Pool) {}

  @transactional({ isolationLevel: 'repeatable read' })
  async add(body: string): Promise<{ isolation: string; count: number }> {
    const tx = currentTransaction();
    await tx.query('INSERT INTO notes (body) VALUES ($1)', [body]);
    const isolation = (await tx.query('SHOW transaction_isolation')).rows[0].transaction_isolation;
    const count = (await tx.query('SELECT count(*)::int AS n FROM notes')).rows[0].n;
    return { isolation, count };
  }

  @transactional()
  async addTwiceThenFail(body: string): Promise<void> {
    await this.add(body); // nests as a savepoint in this method's transaction
    await currentTransaction().query('INSERT INTO notes (body) VALUES ($1)', [body]);
    throw new Error('changed my mind');
  }
}

class SlowService {
  constructor(readonly pool: pg.Pool) {}

  @transactional({ name: 'slow' })
  async work(): Promise<void> {
    await currentTransaction().query('SELECT 1');
    await sleep(200); // an outbound call inside the transaction
  }
}

class ElsewhereService {
  constructor(readonly database: { primary: pg.Pool }) {}

  @transactional<ElsewhereService>({ db: (self) => self.database.primary, name: 'elsewhere' })
  async name(): Promise<string> {
    return currentTransaction().name;
  }
}

describe('@transactional', () => {
  it('runs the method in a transaction on this.pool with the given options, and returns its value', async () => {
    const service = new NotesService(db.pool);
    const before = (await db.pool.query('SELECT count(*)::int AS n FROM notes')).rows[0].n;
    await expect(service.add('hello')).resolves.toEqual({ isolation: 'repeatable read', count: before + 1 });
  });

  it('rolls the whole method back when it throws, nested calls included', async () => {
    const service = new NotesService(db.pool);
    const before = (await db.pool.query('SELECT count(*)::int AS n FROM notes')).rows[0].n;
    await expect(service.addTwiceThenFail('never')).rejects.toThrow('changed my mind');
    expect((await db.pool.query('SELECT count(*)::int AS n FROM notes')).rows[0].n).toBe(before);
  });

  it('takes the database from options.db, and names the transaction after the option or the method', async () => {
    await expect(new ElsewhereService({ primary: db.pool }).name()).resolves.toBe('elsewhere');
  });

  it("names the app's call site, not the decorator, as where an idle transaction was opened", async () => {
    const records = captureRecords();
    setWatchdogThresholds({ warnMs: 0, idleMs: 50 });
    try {
      await new SlowService(db.pool).work(); // the opening line
    } finally {
      setWatchdogThresholds(undefined);
    }
    const idle = records.filter((r) => field(r, 'event.action') === 'db.transaction.idle');
    expect(idle).toHaveLength(1);
    const source = readFileSync(new URL(import.meta.url), 'utf8').split('\n');
    expect(field(idle[0], 'log.origin.file.name')).toMatch(/transactional\.test\.ts$/);
    expect(field(idle[0], 'log.origin.file.line')).toBe(
      source.findIndex((l) => l.includes('// the opening line')) + 1,
    );
  });

  it('is typed so that misuse does not compile', () => {
    class NoPool {
      // @ts-expect-error: the class has no `pool` and no `db` option says where the database is
      @transactional()
      async m(): Promise<void> {}
    }
    class SyncMethod {
      constructor(readonly pool: pg.Pool) {}
      // @ts-expect-error: a transaction is asynchronous; the method must return a promise
      @transactional()
      m(): number {
        return 1;
      }
    }
    expect([NoPool, SyncMethod]).toHaveLength(2);
  });
});
