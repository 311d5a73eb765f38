// Why was it slow, from the app's side, under the preload as users run it: N+1 statements per request and per
// transaction(), pool checkout waits (records, histograms, per-pool counts), and sqlcommenter's traceparent.
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { normalizeQuery } from '../src/pg/normalize.js';
import { databasePort } from './support/db.js';
import { useOtlpReceiver } from './support/otlp-receiver.js';
import { field, fixture, runNode } from './support/run-node.js';

const byAction = (records: Record<string, unknown>[], action: string) =>
  records.filter((r) => field(r, 'event.action') === action);
const nPlusOne = (records: Record<string, unknown>[]) =>
  Object.fromEntries(
    byAction(records, 'db.query.n_plus_one').map((r) => [String(field(r, 'db.query.text')), r]),
  );

describe('N+1 statements', () => {
  it.each([
    ['sampled', {}],
    ['not sampled', { OTEL_TRACES_SAMPLER: 'always_off' }],
  ])('one record per repeated statement and scope, with its call site (%s)', async (_name, env) => {
    const run = await runNode(fixture('n-plus-one-app.mjs'), {
      env: { ...env, PGSIGHT_N_PLUS_ONE_IGNORE: 'known_pattern' },
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const found = nPlusOne(run.records);
    // The loop, Promise.all, the transaction; not 20 different statements, not a retried transaction's 6 + 6,
    // not the ignored one.
    expect(Object.keys(found).sort()).toEqual([
      'SELECT $1::int AS account_id',
      'SELECT $1::int AS in_tx',
      'SELECT $1::int AS parallel_id',
    ]);
    const lines = ['LOOP', 'PARALLEL', 'TX'].map((marker) => lineOf(marker));
    const expected: [string, string, number, string][] = [
      ['SELECT $1::int AS account_id', 'request', lines[0] as number, '/loop'],
      ['SELECT $1::int AS parallel_id', 'request', lines[1] as number, '/parallel'],
      ['SELECT $1::int AS in_tx', 'transaction', lines[2] as number, '/tx'],
    ];
    for (const [text, kind, line, path] of expected) {
      const record = found[text] as Record<string, unknown>;
      expect(record['log.level']).toBe('warn');
      expect(field(record, 'db.query.repetitions')).toBe(20);
      expect(field(record, 'db.query.fingerprint')).toBe(normalizeQuery(text).fingerprint);
      expect(field(record, 'event.duration')).toBeGreaterThan(0);
      expect(field(record, 'log.origin.file.name')).toBe('test/fixtures/n-plus-one-app.mjs');
      expect(field(record, 'log.origin.file.line')).toBe(line);
      expect(field(record, 'url.path')).toBe(path);
      expect(field(record, 'trace.id')).toMatch(/^[0-9a-f]{32}$/);
      expect(String(record.message)).toContain(`20 times in one ${kind}`);
    }
  });

  it('PGSIGHT_N_PLUS_ONE_MIN sets the count, and 0 turns detection off', async () => {
    const five = await runNode(fixture('n-plus-one-app.mjs'), {
      env: { PGSIGHT_N_PLUS_ONE_MIN: '5' },
      scriptArgs: ['/retried,/distinct'],
    });
    // 6 per attempt: reported once (the second attempt), never for the attempt that was run again.
    expect(
      byAction(five.records, 'db.query.n_plus_one').map((r) => field(r, 'db.query.repetitions')),
    ).toEqual([6]);
    const off = await runNode(fixture('n-plus-one-app.mjs'), { env: { PGSIGHT_N_PLUS_ONE_MIN: '0' } });
    expect(off.code).toBe(0);
    expect(byAction(off.records, 'db.query.n_plus_one')).toEqual([]);
  });
});

function lineOf(marker: string): number {
  const source = readFileSync(fixture('n-plus-one-app.mjs'), 'utf8');
  return source.split('\n').findIndex((line) => line.includes(`// ${marker}`)) + 1;
}

const otlpReceiver = useOtlpReceiver({ beforeEach, afterEach });
const otherPool = `127.0.0.1:${databasePort}/test`;

describe('pool checkout waits', () => {
  it('a record per pool and second, histograms with the waits, and each pool counted on its own', async () => {
    const run = await runNode(fixture('pool-wait-app.mjs'), {
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: otlpReceiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_TRACES_EXPORTER: 'none',
        OTEL_METRIC_EXPORT_INTERVAL: '300',
        PGSIGHT_SLOW_QUERY_MS: '150',
      },
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const waits = byAction(run.records, 'db.pool.wait');
    const ordersWaits = waits.filter((r) => field(r, 'db.client.connection.pool.name') === 'orders');
    // 10 queries on 2 connections: 8 waited 200-800 ms, within about a second: one record, the other 7
    // folded into the next one, the first of the second burst (4 queries: 2 wait, the second folded).
    expect(ordersWaits.map((r) => field(r, 'db.client.connection.pool.folded_waits'))).toEqual([
      undefined,
      7,
    ]);
    expect(ordersWaits[0]).toMatchObject({ 'log.level': 'warn' });
    expect(field(ordersWaits[0] as Record<string, unknown>, 'db.client.connection.pool.max')).toBe(2);
    expect(field(ordersWaits[0] as Record<string, unknown>, 'db.client.connection.pool.used')).toBe(2);
    expect(field(ordersWaits[0] as Record<string, unknown>, 'event.duration')).toBeGreaterThanOrEqual(100e6);
    expect(field(ordersWaits[0] as Record<string, unknown>, 'log.origin.file.name')).toBe(
      'test/fixtures/pool-wait-app.mjs',
    );
    // The second pool of the same database has its own name.
    expect(waits.map((r) => field(r, 'db.client.connection.pool.name'))).toContain(otherPool);
    // Each slow query's record says how long its connection took to get.
    const slowWaits = byAction(run.records, 'db.query.slow')
      .filter((r) => String(field(r, 'db.query.text')).includes('in_orders'))
      .map((r) => Number(field(r, 'db.client.connection.wait_ms')));
    expect(slowWaits).toHaveLength(14);
    expect(Math.max(...slowWaits)).toBeGreaterThan(500);
    const histogram = (name: string, pool: string) =>
      otlpReceiver.receiver.points.findLast(
        (p) => p.metric === name && p.attributes['db.client.connection.pool.name'] === pool,
      );
    const wait = histogram('db.client.connection.wait_time', 'orders');
    expect(wait?.value).toBe(14);
    // 2 at once, then 2 more each 200 ms (0.2 + 0.2 + 0.4 + ... + 0.8 = 4 s), and 0.2 + 0.2 in the second burst.
    expect(wait?.sum).toBeGreaterThan(4);
    expect(wait?.sum).toBeLessThan(9);
    const over100ms = (wait?.buckets ?? []).reduce(
      (n, count, i) => n + ((wait?.bounds?.[i - 1] ?? 0) >= 0.1 ? count : 0),
      0,
    );
    expect(over100ms).toBe(10);
    expect(histogram('db.client.connection.use_time', 'orders')?.value).toBe(14);
    // Per-pool connection counts end where pg-pool's own counters are: 2 idle, 0 used, 0 pending, for each.
    const counts = JSON.parse(run.stdout.split('\n').find((l) => l.startsWith('{"orders"')) as string);
    expect(counts).toEqual({
      orders: { total: 2, idle: 2, waiting: 0 },
      other: { total: 2, idle: 2, waiting: 0 },
    });
    // The per-pool connection counts, exported every 300 ms: each pool's own, between 0 and its max at every
    // export (one shared state for all pools drives a pool's series below 0 or above its max), busy while
    // its queries ran, and back to 0 once the pools ended.
    for (const pool of ['orders', otherPool]) {
      const series = (s: string) =>
        otlpReceiver.receiver.points
          .filter(
            (p) =>
              p.metric === 'db.client.connection.count' &&
              p.attributes['db.client.connection.pool.name'] === pool &&
              p.attributes['db.client.connection.state'] === s,
          )
          .map((p) => p.value);
      for (const s of ['idle', 'used']) {
        expect(series(s).length).toBeGreaterThan(1);
        expect(series(s).every((v) => v >= 0 && v <= 2)).toBe(true);
        expect(series(s).at(-1)).toBe(0);
      }
      expect(Math.max(...series('used'))).toBe(2);
    }
  });
});

describe('sqlcommenter (PGSIGHT_SQLCOMMENTER=true)', () => {
  it("the server sees the trace; named statements and commented ones go as they are; the fingerprint is the statement's", async () => {
    const run = await runNode(fixture('sqlcommenter-app.mjs'), {
      env: { PGSIGHT_SQLCOMMENTER: 'true', PGSIGHT_SLOW_QUERY_MS: '300' },
    });
    expect(run.stderr).toBe('');
    const seen = run.records.filter((r) => 'seen' in r);
    expect(seen.map((r) => r.marker)).toEqual([
      'AS commented',
      'AS named_slow',
      'AS named_slow',
      'AS has_comment',
    ]);
    const slow = byAction(run.records, 'db.query.slow');
    const commented = slow.find((r) => String(field(r, 'db.query.text')).includes('commented'));
    const traceId = field(commented as Record<string, unknown>, 'trace.id');
    const spanId = field(commented as Record<string, unknown>, 'span.id');
    expect(seen[0]?.seen).toBe(
      `SELECT pg_sleep(0.4) AS commented, $1::int AS n /*traceparent='00-${traceId}-${spanId}-01'*/`,
    );
    expect(seen[0]?.rows).toEqual([{ commented: '', n: 7 }]);
    expect(field(commented as Record<string, unknown>, 'db.query.text')).toBe(
      'SELECT pg_sleep(?) AS commented, $1::int AS n',
    );
    expect(field(commented as Record<string, unknown>, 'db.query.fingerprint')).toBe(
      normalizeQuery('SELECT pg_sleep(0.4) AS commented, $1::int AS n').fingerprint,
    );
    expect(seen[1]?.seen).toBe('SELECT pg_sleep($1) AS named_slow');
    expect(seen[2]?.seen).toBe('SELECT pg_sleep($1) AS named_slow');
    expect(seen[3]?.seen).toBe('SELECT pg_sleep(0.4) AS has_comment /* app */');
  });

  it('is off by default, and never on unsampled spans', async () => {
    for (const env of [{}, { PGSIGHT_SQLCOMMENTER: 'true', OTEL_TRACES_SAMPLER: 'always_off' }]) {
      const run = await runNode(fixture('sqlcommenter-app.mjs'), { env });
      const seen = run.records.filter((r) => 'seen' in r);
      expect(seen[0]?.seen).toBe('SELECT pg_sleep(0.4) AS commented, $1::int AS n');
    }
  });
});
