// The @transactional decorator (TC39 standard decorators) and pgsight/testing's helpers.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestSchema, type TestSchema } from '../src/testing/index.js';
import { currentTransaction } from '../src/transaction/transaction.js';
import { transactional } from '../src/transaction/transactional.js';

let db: TestSchema;

beforeAll(async () => {
  db = await createTestSchema({ name: 'decorator' });
  await db.pool.query('CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)');
});
afterAll(() => db.drop());

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
