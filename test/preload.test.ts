// The preload as users run it: child processes with `--import pgsight/register` (or NODE_OPTIONS).
import { describe, expect, it } from 'vitest';
import { normalizeQuery } from '../src/pg/normalize.js';
import { databasePort } from './support/db.js';
import { field, fixture, runNode } from './support/run-node.js';

const SLOW = { PGSIGHT_SLOW_QUERY_MS: '200' };
const slowAliases = ['pool_promise', 'pool_callback', 'client_config', 'client_named', 'client_callback'];

const byAction = (records: Record<string, unknown>[], action: string) =>
  records.filter((r) => field(r, 'event.action') === action);
const textOf = (r: Record<string, unknown>) => String(field(r, 'db.query.text'));

describe.each([
  ['ESM', 'use-pg.mjs'],
  ['CommonJS', 'use-pg.cjs'],
])('%s app under --import pgsight/register', (_kind, name) => {
  it('flags every slow query exactly once, whatever the call style, and no fast one', async () => {
    const run = await runNode(fixture(name), { env: SLOW });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('done');
    const slow = byAction(run.records, 'db.query.slow');
    expect(slow.map(textOf).map((t) => slowAliases.find((a) => t.includes(a)))).toEqual(slowAliases);
    expect(slow.some((r) => textOf(r).includes('fast'))).toBe(false);
    for (const record of slow) {
      expect(Object.keys(record)[0]).toBe('@timestamp');
      expect(record).toMatchObject({ 'log.level': 'warn', 'ecs.version': expect.any(String) });
      expect(field(record, 'event.duration')).toBeGreaterThanOrEqual(200_000_000);
      expect(field(record, 'event.duration')).toBeLessThan(60_000_000_000);
      expect(field(record, 'db.system.name')).toBe('postgresql');
      expect(field(record, 'db.namespace')).toBe('test');
      expect(field(record, 'db.operation.name')).toBe('SELECT');
      expect(field(record, 'db.query.fingerprint')).toBe(normalizeQuery(textOf(record)).fingerprint);
      expect(field(record, 'server.address')).toBe('127.0.0.1');
      expect(field(record, 'server.port')).toBe(databasePort);
      expect(field(record, 'service.name')).toBe('pgsight');
      expect(field(record, 'trace.id')).toMatch(/^[0-9a-f]{32}$/);
      // Parameter values are not logged by default.
      expect(field(record, 'db.query.parameters')).toBeUndefined();
    }
    // Literals are replaced, $n kept.
    expect(slow.map(textOf)).toContain('SELECT pg_sleep(?) AS pool_callback');
    expect(slow.map(textOf)).toContain('SELECT pg_sleep($1) AS pool_promise');
  });

  it('records failed queries with their SQLSTATE, for promise and callback styles', async () => {
    const run = await runNode(fixture(name), { env: SLOW });
    const failed = byAction(run.records, 'db.query.error');
    expect(failed.map((r) => [field(r, 'db.response.status_code'), field(r, 'log.level')])).toEqual([
      ['42P01', 'error'],
      ['22012', 'error'],
    ]);
    expect(failed[0]).toMatchObject({
      db: {
        collection: { name: 'no_such_table' },
        query: { text: 'SELECT * FROM no_such_table WHERE id = ?' },
      },
      error: { type: 'DatabaseError', code: '42P01', message: 'relation "no_such_table" does not exist' },
      event: { outcome: 'failure' },
    });
  });
});

describe('settings', () => {
  it('threshold 0 flags every query', async () => {
    const run = await runNode(fixture('use-pg.mjs'), { env: { PGSIGHT_SLOW_QUERY_MS: '0' } });
    const slow = byAction(run.records, 'db.query.slow').map(textOf);
    expect(slow).toContain('SELECT ? AS fast');
    expect(slow).toHaveLength(6);
  });

  it('the default threshold (500 ms) flags none of the 250 ms queries', async () => {
    const run = await runNode(fixture('use-pg.mjs'));
    expect(byAction(run.records, 'db.query.slow')).toEqual([]);
    expect(byAction(run.records, 'db.query.error')).toHaveLength(2);
  });

  it('masks the values PostgreSQL quotes in its errors, unless PGSIGHT_LOG_PARAMS is on', async () => {
    const run = await runNode(fixture('pg-error-values.mjs'));
    expect(run.stdout).toContain('done');
    const failed = byAction(run.records, 'db.query.error');
    expect(failed.map((r) => field(r, 'error.message'))).toEqual([
      'invalid input syntax for type integer: "?"',
      'duplicate key value violates unique constraint "people_pkey"',
    ]);
    expect(run.stdout).not.toContain('jane-secret-value-1');
    expect(run.stdout).not.toContain('jane@secret.example');
    const shown = await runNode(fixture('pg-error-values.mjs'), { env: { PGSIGHT_LOG_PARAMS: 'true' } });
    expect(
      field(byAction(shown.records, 'db.query.error')[0] as Record<string, unknown>, 'error.message'),
    ).toBe('invalid input syntax for type integer: "jane-secret-value-1"');
  });

  it('flags slow queries with tracing sampled off', async () => {
    const run = await runNode(fixture('use-pg.mjs'), { env: { ...SLOW, OTEL_TRACES_SAMPLER: 'always_off' } });
    const slow = byAction(run.records, 'db.query.slow');
    expect(slow).toHaveLength(5);
    expect(slow.every((r) => field(r, 'trace.id') === undefined)).toBe(true);
  });

  it('flags slow queries with OTEL_TRACES_EXPORTER=none (no tracer provider at all)', async () => {
    const run = await runNode(fixture('use-pg.mjs'), { env: { ...SLOW, OTEL_TRACES_EXPORTER: 'none' } });
    expect(byAction(run.records, 'db.query.slow')).toHaveLength(5);
  });

  it('logs parameter values only with PGSIGHT_LOG_PARAMS=true', async () => {
    const run = await runNode(fixture('use-pg.mjs'), { env: { ...SLOW, PGSIGHT_LOG_PARAMS: 'true' } });
    const record = byAction(run.records, 'db.query.slow').find((r) => textOf(r).includes('pool_promise'));
    expect(field(record ?? {}, 'db.query.parameters')).toEqual(['0.25']);
  });

  it('works through NODE_OPTIONS too', async () => {
    const run = await runNode(fixture('use-pg.cjs'), {
      args: [],
      env: { ...SLOW, NODE_OPTIONS: '--import pgsight/register' },
    });
    expect(byAction(run.records, 'db.query.slow')).toHaveLength(5);
  });

  it('PGSIGHT_DISABLED=true does nothing at all', async () => {
    const run = await runNode(fixture('use-pg.mjs'), { env: { ...SLOW, PGSIGHT_DISABLED: 'true' } });
    expect(run.code).toBe(0);
    expect(run.records).toEqual([]);
    expect(run.stdout.trim()).toBe('done');
  });

  it('writes to PGSIGHT_LOG_FILE instead of stdout', async () => {
    const { mkdtemp, readFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'pgsight-'));
    const file = join(dir, 'nested', 'pgsight.ndjson');
    const run = await runNode(fixture('use-pg.mjs'), { env: { ...SLOW, PGSIGHT_LOG_FILE: file } });
    expect(run.stdout.trim()).toBe('done');
    const lines = (await readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.filter((r) => field(r, 'event.action') === 'db.query.slow')).toHaveLength(5);
  });

  it.each([
    [
      'PGSIGHT_SLOW_QUERY_MS',
      'soon',
      'PGSIGHT_SLOW_QUERY_MS="soon" is invalid (expected a whole number from 0 to 86400000); using 500',
    ],
    [
      'PGSIGHT_LOG_PARAMS',
      'sometimes',
      'PGSIGHT_LOG_PARAMS="sometimes" is invalid (expected true or false); using false',
    ],
    ['PGSIGHT_DISABLED', '2', 'PGSIGHT_DISABLED="2" is invalid (expected true or false); using false'],
    [
      'PGSIGHT_LOG_LEVEL',
      'chatty',
      'PGSIGHT_LOG_LEVEL="chatty" is invalid (expected fatal, error, warn, info, debug, trace, silent); using "info"',
    ],
    [
      'PGSIGHT_QUERY_CACHE_SIZE',
      '-5',
      'PGSIGHT_QUERY_CACHE_SIZE="-5" is invalid (expected a whole number from 0 to 1000000); using 1000',
    ],
    [
      'PGSIGHT_CONNECT_SPANS',
      'y',
      'PGSIGHT_CONNECT_SPANS="y" is invalid (expected true or false); using false',
    ],
    [
      'OTEL_TRACES_SAMPLER',
      'often',
      'OTEL_TRACES_SAMPLER="often" is invalid (expected always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio); using parentbased_always_on',
    ],
    [
      'PGSIGHT_TX_WARN_MS',
      '5s',
      'PGSIGHT_TX_WARN_MS="5s" is invalid (expected a whole number from 0 to 86400000); using 5000',
    ],
    [
      'PGSIGHT_TX_IDLE_MS',
      '-1',
      'PGSIGHT_TX_IDLE_MS="-1" is invalid (expected a whole number from 0 to 86400000); using 1000',
    ],
    [
      'PGSIGHT_ELASTICSEARCH_URL',
      'localhost:9200',
      'PGSIGHT_ELASTICSEARCH_URL="localhost:9200" is invalid (expected an http(s) URL); using none',
    ],
  ])('a bad %s prints one clear warning and the app runs on', async (variable, value, message) => {
    const run = await runNode(fixture('use-pg.mjs'), { env: { [variable]: value } });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('done');
    expect(run.stderr).toBe(`pgsight: ${message}\n`);
  });
});
