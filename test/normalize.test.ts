import { describe, expect, it } from 'vitest';
import { normalizeQuery } from '../src/pg/normalize.js';
import { createQueryNormalizer } from '../src/pg/query-cache.js';

const fp = (sql: string) => normalizeQuery(sql).fingerprint;

describe('normalizeQuery', () => {
  it.each([
    ["SELECT * FROM users WHERE id = 42 AND name = 'bob'", 'SELECT * FROM users WHERE id = ? AND name = ?'],
    ["select 1.5e3, -7, .5, 0x1F, 'it''s'", 'SELECT ?, ?, ?, ?, ?'],
    [
      "SELECT E'a\\'b', $tag$ any 'text' $tag$, $$x$$, B'101', X'ff', U&'d\\0061t'",
      'SELECT ?, ?, ?, ?, ?, ?',
    ],
    ['SELECT true, FALSE, NULL', 'SELECT ?, ?, NULL'],
    ['SELECT * FROM t WHERE id IN (1, 2, 3)', 'SELECT * FROM t WHERE id IN (...)'],
    ['SELECT * FROM t WHERE id IN ($1, $2, $3)', 'SELECT * FROM t WHERE id IN (...)'],
    ["INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')", 'INSERT INTO t(a, b) VALUES (?, ?)'],
    [
      'SELECT a -- trailing comment\nFROM t /* block /* nested */ */ WHERE b = $1',
      'SELECT a FROM t WHERE b = $1',
    ],
    ['SELECT a - 1, b-2 FROM t', 'SELECT a - ?, b - ? FROM t'],
    ["ALTER ROLE app PASSWORD 'hunter2'", 'ALTER ROLE app PASSWORD ?'],
    // PostgreSQL's keyword list; its unreserved and column-name keywords stay names where they stand for one.
    ['drop table if exists users cascade', 'DROP TABLE IF EXISTS users CASCADE'],
    ['alter table t add column note varchar(10)', 'ALTER TABLE t ADD COLUMN note VARCHAR (?)'],
    ['begin isolation level serializable', 'BEGIN ISOLATION LEVEL SERIALIZABLE'],
    [
      'insert into t (a) values (1) on conflict do nothing',
      'INSERT INTO t(a) VALUES (?) ON CONFLICT DO NOTHING',
    ],
    [
      'select name, type, value from items i where type = $1 and i.position > 2 order by name desc',
      'SELECT name, type, value FROM items i WHERE type = $1 AND i.position > ? ORDER BY name DESC',
    ],
    [
      'update items set name = $1, data = $2 returning name',
      'UPDATE items SET name = $1, data = $2 RETURNING name',
    ],
    ['set local statement_timeout = 100', 'SET LOCAL statement_timeout = ?'],
    [
      'create table t (id serial primary key, at timestamptz, owner int references u on delete cascade, name text)',
      'CREATE TABLE t(id serial PRIMARY KEY, at timestamptz, owner INT REFERENCES u ON DELETE CASCADE, name text)',
    ],
    [
      'select case when type = 1 then 0 else data end from t',
      'SELECT CASE WHEN type = ? THEN ? ELSE data END FROM t',
    ],
    // Rows of one shape collapse, whatever they hold; DEFAULT and function calls are part of the shape.
    [
      'insert into "users" ("id", "name", "at") values (default, $1, now()), (default, $2, now()), (default, null, now())',
      'INSERT INTO "users"("id", "name", "at") VALUES (DEFAULT, $1, now())',
    ],
    [
      'insert into t values (default, $1), ($2, $3), (default, $4)',
      'INSERT INTO t VALUES (DEFAULT, $1), ($2, $3)',
    ],
  ])('%s', (sql, text) => {
    expect(normalizeQuery(sql).text).toBe(text);
  });

  it('keeps $n parameters, casts and quoted identifiers', () => {
    expect(normalizeQuery('SELECT "Weird Col"::text FROM "Users" WHERE id = $1::int').text).toBe(
      'SELECT "Weird Col"::text FROM "Users" WHERE id = $1::int',
    );
  });

  it("summarizes as OpenTelemetry's db.query.summary: the operation and its table", () => {
    expect(normalizeQuery('select * from public.accounts where id = 1').summary).toBe(
      'SELECT public.accounts',
    );
    expect(normalizeQuery('SELECT pg_sleep($1)').summary).toBe('SELECT');
    expect(normalizeQuery('insert into ledger_entries (a) values (1)').summary).toBe('INSERT ledger_entries');
    expect(normalizeQuery('   ').summary).toBeUndefined();
  });

  it('finds the operation and the collection', () => {
    expect(normalizeQuery('select * from public.accounts where id = 1')).toMatchObject({
      operation: 'SELECT',
      collection: 'public.accounts',
    });
    expect(normalizeQuery('INSERT INTO ledger_entries (a) VALUES (1)')).toMatchObject({
      operation: 'INSERT',
      collection: 'ledger_entries',
    });
    expect(normalizeQuery('UPDATE accounts SET balance = balance - $1')).toMatchObject({
      operation: 'UPDATE',
      collection: 'accounts',
    });
    expect(
      normalizeQuery('WITH x AS (SELECT 1 FROM a) DELETE FROM b WHERE id IN (SELECT * FROM x)'),
    ).toMatchObject({
      operation: 'DELETE',
      collection: 'b',
    });
    expect(normalizeQuery('SELECT now()').collection).toBeUndefined();
    expect(normalizeQuery('   ').operation).toBeUndefined();
  });

  describe('fingerprint', () => {
    it('is 16 hex digits and stable across calls (and so across processes: it depends on the text only)', () => {
      expect(fp('SELECT 1')).toMatch(/^[0-9a-f]{16}$/);
      expect(fp('SELECT 1')).toBe(fp('SELECT 1'));
      // Pinned: a change here changes every stored fingerprint, and needs a migration note in the README.
      expect(fp('SELECT * FROM users WHERE id = 1')).toBe('6f540be5517aaffe');
    });

    it.each([
      ['SELECT * FROM users WHERE id = 1', 'select *\n  from USERS where ID = 99 -- x'],
      ["SELECT 'a'", "SELECT E'b\\n'"],
      ['SELECT * FROM t WHERE id IN (1)', 'SELECT * FROM t WHERE id IN (1, 2, 3, 4)'],
      ['INSERT INTO t VALUES ($1, $2)', 'INSERT INTO t VALUES ($1, $2), ($3, $4), ($5, $6)'],
      [
        'INSERT INTO t VALUES (DEFAULT, $1, now())',
        'INSERT INTO t VALUES (DEFAULT, $1, now()), (DEFAULT, NULL, now())',
      ],
      ['SELECT /* hint */ a FROM t', 'SELECT a FROM t'],
      ['SELECT $1', 'select   $1'],
    ])('equal: %j ~ %j', (a, b) => {
      expect(fp(a)).toBe(fp(b));
    });

    it.each([
      ['SELECT a FROM t', 'SELECT b FROM t'],
      ['SELECT * FROM t WHERE id = 1', 'SELECT * FROM t WHERE id > 1'],
      ['SELECT * FROM t WHERE id = $1', 'SELECT * FROM t WHERE id = $2'],
      ['SELECT * FROM users', 'SELECT * FROM "Users"'],
      ['DELETE FROM t', 'SELECT * FROM t'],
    ])('different: %j vs %j', (a, b) => {
      expect(fp(a)).not.toBe(fp(b));
    });
  });

  it('never throws and never hangs on random or malformed input', () => {
    const pieces = [
      "'",
      '"',
      '$$',
      '$a$',
      '--',
      '/*',
      '*/',
      "E'",
      '\\',
      '(',
      ')',
      ',',
      '1',
      '-',
      '.',
      'IN',
      'VALUES',
      ' ',
      '\n',
      'x',
      '::',
      '$1',
      'é',
      '\u0000',
    ];
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    for (let n = 0; n < 5000; n++) {
      let sql = '';
      const length = Math.floor(random() * 40);
      for (let i = 0; i < length; i++) sql += pieces[Math.floor(random() * pieces.length)];
      const result = normalizeQuery(sql);
      expect(typeof result.text).toBe('string');
      expect(result.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    }
    for (const sql of [
      "SELECT 'unterminated",
      'SELECT $x$ never closed',
      'SELECT /* open',
      'SELECT "open',
      "E'\\",
    ]) {
      expect(() => normalizeQuery(sql)).not.toThrow();
    }
    // One pass, no backtracking: pathological megabyte inputs finish (the test timeout would catch a hang).
    expect(normalizeQuery('/*'.repeat(500_000)).text).toBe('');
    expect(normalizeQuery(`SELECT ${"'a',".repeat(100_000)}`).text).toMatch(/^SELECT \?, \?/);
    expect(normalizeQuery(`VALUES ${'(VALUES '.repeat(100_000)}`).text).toMatch(/^VALUES \(VALUES/);
    expect(normalizeQuery(`INSERT INTO t VALUES ${'(DEFAULT, $1),'.repeat(100_000)}`).text).toBe(
      'INSERT INTO t VALUES (DEFAULT, $1),',
    );
  });
});

describe('createQueryNormalizer', () => {
  it('caches per statement text, bounded by size (least recently used goes first)', () => {
    const normalize = createQueryNormalizer(2);
    const a = normalize('SELECT 1');
    expect(normalize('SELECT 1')).toBe(a);
    normalize('SELECT 2');
    normalize('SELECT 1'); // refresh
    normalize('SELECT 3'); // evicts SELECT 2
    expect(normalize('SELECT 1')).toBe(a);
    const b = normalize('SELECT 2');
    expect(normalize('SELECT 2')).toBe(b);
  });

  it('size 0 disables caching but still normalizes', () => {
    const normalize = createQueryNormalizer(0);
    expect(normalize('SELECT 1')).not.toBe(normalize('SELECT 1'));
    expect(normalize('SELECT 1').text).toBe('SELECT ?');
  });
});
