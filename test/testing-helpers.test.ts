// pgsight/testing as a user's test suite uses it: every test is rolled back, and code under test that opens
// its own transactions gets savepoints inside the test's transaction.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestSchema, type TestSchema, useTestTransaction } from '../src/testing/index.js';
import { transaction } from '../src/transaction/transaction.js';
import { databaseUrl } from './support/db.js';

const db: TestSchema = await createTestSchema({ name: 'helpers' });
beforeAll(() => db.pool.query('CREATE TABLE IF NOT EXISTS items (name text PRIMARY KEY)'));
afterAll(() => db.drop());

/** Code under test: opens its own transaction, and uses the pool directly. */
async function addItem(name: string): Promise<number> {
  await transaction(db.pool, (tx) => tx.query('INSERT INTO items (name) VALUES ($1)', [name]));
  return (await db.pool.query('SELECT count(*)::int AS n FROM items')).rows[0].n;
}

describe('useTestTransaction', () => {
  const test = useTestTransaction(db.pool);

  it('first test: writes are visible inside the test', async () => {
    expect(await addItem('apple')).toBe(1);
    expect(await addItem('pear')).toBe(2);
    expect(test.transaction.depth).toBe(0);
  });

  it('second test: the first test was rolled back', async () => {
    expect(await addItem('apple')).toBe(1);
  });

  it('a failing transaction inside a test rolls back to its savepoint only', async () => {
    await addItem('plum');
    await expect(addItem('plum')).rejects.toMatchObject({ code: '23505' });
    expect(await addItem('fig')).toBe(2);
  });
});

/** Code under test that checks a client out itself, as pg's docs show it. */
async function addWithClient(name: string): Promise<number> {
  const client = await db.pool.connect();
  try {
    await client.query('INSERT INTO items (name) VALUES ($1)', [name]);
    return (await client.query('SELECT count(*)::int AS n FROM items')).rows[0].n;
  } finally {
    client.release();
  }
}

function addWithCallback(name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    db.pool.connect((error, client, done) => {
      if (error || !client) return reject(error);
      client.query('INSERT INTO items (name) VALUES ($1)', [name], (insertError) => {
        if (insertError) {
          done(insertError);
          return reject(insertError);
        }
        client.query('SELECT count(*)::int AS n FROM items', (countError, result) => {
          done();
          if (countError) reject(countError);
          else resolve(result.rows[0].n);
        });
      });
    });
  });
}

describe('useTestTransaction with every pool entry point', () => {
  const test = useTestTransaction(db.pool);

  it('pool.connect() (promise), queries on the client, release(): all inside the test transaction', async () => {
    expect(await addWithClient('kiwi')).toBe(1);
    expect(await addWithClient('lime')).toBe(2);
    // release() handed the client back without ending the test's transaction.
    expect((await db.pool.query('SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(2);
  });

  it('pool.connect(callback) and client.query(callback)', async () => {
    expect(await addWithCallback('kiwi')).toBe(1);
    expect(await addWithCallback('lime')).toBe(2);
  });

  it('several checkouts at once share the test transaction', async () => {
    // One connection: pg queues their statements in order, so the three inserts run before any count.
    const counts = await Promise.all(['a', 'b', 'c'].map(addWithClient));
    expect(counts).toEqual([3, 3, 3]);
  });

  it('transaction() on a checked-out client nests as a savepoint, and its rollback keeps earlier work', async () => {
    await addWithClient('kiwi');
    const client = await db.pool.connect();
    await expect(
      transaction(client, async (tx) => {
        await tx.query('INSERT INTO items (name) VALUES ($1)', ['lime']);
        expect(tx.depth).toBe(1);
        throw new Error('undo lime');
      }),
    ).rejects.toThrow('undo lime');
    await transaction(client, (tx) => tx.query('INSERT INTO items (name) VALUES ($1)', ['fig']));
    client.release();
    const { rows } = await db.pool.query('SELECT name FROM items ORDER BY name');
    expect(rows.map((r) => r.name)).toEqual(['fig', 'kiwi']);
    expect(test.transaction.depth).toBe(0);
  });

  it('a failed statement on a checked-out client inside transaction() leaves the test usable', async () => {
    await addWithClient('kiwi');
    const client = await db.pool.connect();
    await expect(
      transaction(client, (tx) => tx.query('INSERT INTO items (name) VALUES ($1)', ['kiwi'])),
    ).rejects.toMatchObject({ code: '23505' });
    client.release();
    expect(await addWithClient('lime')).toBe(2);
  });
});

describe('createTestSchema', () => {
  it('gives each file its own schema on the search_path', async () => {
    const { rows } = await db.pool.query('SELECT current_schema() AS s');
    expect(rows[0].s).toBe(db.schema);
    expect(db.schema).toMatch(/^t_helpers_/);
  });

  it('drop() removes the schema', async () => {
    const other = await createTestSchema({ name: 'dropme' });
    await other.pool.query('CREATE TABLE x (id int)');
    await other.drop();
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1', [
      other.schema,
    ]);
    expect(rows[0].n).toBe(0);
  });

  it('names a missing database as missing, without the password', async () => {
    const url = new URL(databaseUrl);
    // The server's own password, or (a trust-auth server ignores it) one made up for the check.
    url.password ||= 'hunter2-secret';
    url.pathname = '/pgsight_no_such_database';
    const error = await createTestSchema({ name: 'missing', databaseUrl: url.toString() }).catch((e) => e);
    expect(error).toMatchObject({ code: 'PGSIGHT_ERR_TESTING_DATABASE_MISSING' });
    expect(error.message).toContain('"pgsight_no_such_database" does not exist');
    expect(error.message).not.toContain(`:${url.password}@`);
  });

  it('names an unreachable server, without the password', async () => {
    const error = await createTestSchema({
      name: 'unreachable',
      databaseUrl: 'postgres://app:hunter2-secret@127.0.0.1:1/test',
    }).catch((e) => e);
    expect(error).toMatchObject({ code: 'PGSIGHT_ERR_TESTING_UNREACHABLE' });
    expect(error.message).toBe(
      'pgsight/testing: PostgreSQL is not reachable at postgres://app:***@127.0.0.1:1/test (ECONNREFUSED): start it, or set DATABASE_URL',
    );
  });
});

afterAll(async () => {
  const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM items');
  // Nothing any test wrote survived.
  expect(rows[0].n).toBe(0);
});
