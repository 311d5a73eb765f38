// pgsight/testing as a user's test suite uses it: every test is rolled back, and code under test that opens
// its own transactions gets savepoints inside the test's transaction.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestSchema, type TestSchema, useTestTransaction } from '../src/testing/index.js';
import { transaction } from '../src/transaction/transaction.js';

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
});

afterAll(async () => {
  const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM items');
  // Nothing any test wrote survived.
  expect(rows[0].n).toBe(0);
});
