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
    ["ALTER ROLE app PASSWORD 'hunter2'", 'ALTER role app password ?'],
  ])('%s', (sql, text) => {
    expect(normalizeQuery(sql).text).toBe(text);
  });

  it('keeps $n parameters, casts and quoted identifiers', () => {
    expect(normalizeQuery('SELECT "Weird Col"::text FROM "Users" WHERE id = $1::int').text).toBe(
      'SELECT "Weird Col"::text FROM "Users" WHERE id = $1::int',
    );
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
