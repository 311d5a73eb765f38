// db.namespace ({database}|{schema}): the schema pgsight reads from a connection's startup options is the one
// the server resolves unqualified names in first, checked against the server's own current_schema().
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { namespaceOf, schemaFromOptions } from '../src/pg/namespace.js';
import { databaseUrl } from './support/db.js';
import { field, fixture, runNode } from './support/run-node.js';

const schemas = ['pgsight_ns_a', 'pgsight_ns_b', 'Pgsight NS "c"'];
const quoted = (name: string) => `"${name.replaceAll('"', '""')}"`;

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  for (const name of schemas) await admin.query(`CREATE SCHEMA IF NOT EXISTS ${quoted(name)}`);
  await admin.end();
});
afterAll(async () => {
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  for (const name of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${quoted(name)}`);
  await admin.end();
});

describe('db.namespace', () => {
  it.each([
    ['-c search_path=pgsight_ns_a,public', 'pgsight_ns_a'],
    ['--search_path=pgsight_ns_b', 'pgsight_ns_b'],
    ['--search-path=pgsight_ns_b', 'pgsight_ns_b'],
    ['-csearch_path=pgsight_ns_a -c statement_timeout=5000', 'pgsight_ns_a'],
    ['-c search_path=pgsight_ns_a -c search_path=pgsight_ns_b', 'pgsight_ns_b'],
    ['-c search_path="Pgsight\\ NS\\ ""c""",public', 'Pgsight NS "c"'],
    ['-c search_path=PgSight_NS_B', 'pgsight_ns_b'],
  ])('options %j: the database and the schema the server resolves names in', async (options, schema) => {
    const client = new pg.Client({ connectionString: databaseUrl, options });
    await client.connect();
    try {
      const { rows } = await client.query<{ schema: string; db: string }>(
        'SELECT current_schema() AS schema, current_database() AS db',
      );
      expect(rows[0]?.schema).toBe(schema);
      expect(namespaceOf(client)).toBe(`${rows[0]?.db}|${schema}`);
    } finally {
      await client.end();
    }
  });

  it.each([
    [undefined],
    ['-c statement_timeout=5000'],
    ['-c search_path="$user",public'],
    ['-c search_path=$user'],
    ['-c search_path='],
  ])('options %j: the database alone (no schema set, or one the client cannot name)', async (options) => {
    const client = new pg.Client({ connectionString: databaseUrl, ...(options ? { options } : {}) });
    await client.connect();
    try {
      const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db');
      expect(namespaceOf(client)).toBe(rows[0]?.db);
    } finally {
      await client.end();
    }
  });

  it('ignores words that only mention search_path', () => {
    expect(schemaFromOptions('-c application_name=search_path=x')).toBeUndefined();
    expect(schemaFromOptions('search_path=x')).toBeUndefined();
  });

  it('slow and failed query records under the preload carry it, from PGOPTIONS', async () => {
    const run = await runNode(fixture('use-pg.mjs'), {
      env: { PGSIGHT_SLOW_QUERY_MS: '200', PGOPTIONS: '-c search_path=pgsight_ns_a,public' },
    });
    expect(run.stderr).toBe('');
    const records = run.records.filter((r) => String(field(r, 'event.action')).startsWith('db.query.'));
    expect(records.length).toBeGreaterThan(0);
    for (const record of records) expect(field(record, 'db.namespace')).toBe('test|pgsight_ns_a');
  });
});
