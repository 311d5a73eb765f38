// Why was it slow, from the server's side, under the preload as users run it: real row locks held by a
// transaction() of the app, by other sessions, by two at once; a query hanging past 10x the threshold; the
// app's pool exhausted; a role the server refuses a second connection; plans of a 100,000-row table.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeQuery } from '../src/pg/normalize.js';
import { databaseUrl } from './support/db.js';
import { field, fixture, type RunResult, runNode } from './support/run-node.js';

const SLOW = { PGSIGHT_SLOW_QUERY_MS: '200' };
const byAction = (run: RunResult, action: string) =>
  run.records.filter((r) => field(r, 'event.action') === action);
const summary = (run: RunResult) =>
  JSON.parse(run.stdout.split('\n').find((l) => l.startsWith('{"scenario"')) as string);
const waiterText = (table: string) => `UPDATE ${table} SET balance = balance - 1 WHERE id = $1`;
const slowUpdate = (run: RunResult, action = 'db.query.slow') =>
  byAction(run, action).find((r) => String(field(r, 'db.query.text')).includes('balance - ?'));

function lineOf(marker: string): number {
  const source = readFileSync(fixture('forensics-app.mjs'), 'utf8');
  // The marker's comment is on the line before the one it names.
  return source.split('\n').findIndex((line) => line.includes(`// ${marker}`)) + 2;
}

let admin: pg.Client;
async function accounts(table: string): Promise<void> {
  await admin.query(`DROP TABLE IF EXISTS ${table}`);
  await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, balance int NOT NULL)`);
  await admin.query(`INSERT INTO ${table} VALUES (1, 100), (2, 100)`);
}

beforeAll(async () => {
  admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
});
afterAll(async () => {
  await admin.end();
});

describe('wait and blockers, sampled while the query runs', () => {
  it.each([
    ['transaction()', 'HOLDER', {}],
    ['a hand-written BEGIN', 'MANUAL', { HOLDER_KIND: 'manual' }],
  ])(
    "names the app's own transaction that holds the lock (%s): pid, statement, fingerprint, origin",
    async (_kind, marker, env) => {
      await accounts('fx_lock');
      const run = await runNode(fixture('forensics-app.mjs'), {
        env: { ...SLOW, ...env },
        scriptArgs: ['lock', 'fx_lock'],
      });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const { holderPid } = summary(run);
      const record = slowUpdate(run) as Record<string, unknown>;
      expect(record).toBeDefined();
      expect(field(record, 'db.query.text')).toBe(normalizeQuery(waiterText('fx_lock')).text);
      expect(field(record, 'db.query.server_pid')).toEqual(expect.any(Number));
      expect(field(record, 'db.query.wait')).toEqual({ type: 'Lock', event: 'transactionid' });
      const blockers = field(record, 'db.query.blocked_by') as Record<string, unknown>[];
      expect(blockers).toHaveLength(1);
      const [blocker] = blockers as [Record<string, unknown>];
      expect(blocker.pid).toBe(holderPid);
      expect(blocker.state).toBe('idle in transaction');
      const holderStatement = 'UPDATE fx_lock SET balance = balance + 1 WHERE id = 1';
      expect(blocker.query).toEqual({
        text: normalizeQuery(holderStatement).text,
        fingerprint: normalizeQuery(holderStatement).fingerprint,
      });
      expect(JSON.stringify(blocker)).not.toContain('+ 1 WHERE id = 1');
      expect(field(blocker, 'transaction.duration_ms')).toBeGreaterThanOrEqual(150);
      expect(blocker.origin).toMatchObject({ file: 'test/fixtures/forensics-app.mjs', line: lineOf(marker) });
      expect(String(record.message)).toContain('slow query');
    },
  );
});

/**
 * Lock `table` from `sessions` transactions of the test's own (another process), with `statement` (row 1 for
 * update by default); released `ms` after `waiters` backends wait on a lock with a statement on `table` (so
 * a slow start of the app under test, Node 22's off-thread loader under load, cannot let it miss the lock).
 */
async function holdElsewhere(table: string, sessions: number, ms: number, statement?: string, waiters = 1) {
  const clients = await Promise.all(
    Array.from({ length: sessions }, async (_, i) => {
      const c = new pg.Client({ connectionString: databaseUrl, application_name: `holder-${i + 1}` });
      await c.connect();
      await c.query('BEGIN');
      await c.query(statement ?? `SELECT balance FROM ${table} WHERE id = 1 FOR UPDATE`);
      return c;
    }),
  );
  const pids = clients.map((c) => (c as unknown as { processID: number }).processID);
  const released = (async () => {
    try {
      for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
        const { rows } = await admin.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
          [`UPDATE ${table} %`],
        );
        if (rows[0].n >= waiters) break;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      await new Promise((resolve) => setTimeout(resolve, ms));
    } finally {
      for (const c of clients) {
        await c.query('COMMIT');
        await c.end();
      }
    }
  })();
  return { pids, released };
}

describe('blockers in other processes', () => {
  it('one blocker: everything but the origin', async () => {
    await accounts('fx_other');
    const { pids, released } = await holdElsewhere('fx_other', 1, 700);
    const run = await runNode(fixture('forensics-app.mjs'), {
      env: SLOW,
      scriptArgs: ['wait-only', 'fx_other'],
    });
    await released;
    expect(run.code).toBe(0);
    const record = slowUpdate(run) as Record<string, unknown>;
    expect(field(record, 'db.query.server_pid')).toBe(summary(run).pids[0]);
    expect(field(record, 'db.query.wait')).toEqual({ type: 'Lock', event: 'transactionid' });
    const [blocker] = field(record, 'db.query.blocked_by') as [Record<string, unknown>];
    expect(blocker).toMatchObject({
      pid: pids[0],
      state: 'idle in transaction',
      application_name: 'holder-1',
    });
    expect(blocker.query).toEqual({
      text: 'SELECT balance FROM fx_other WHERE id = ? FOR UPDATE',
      fingerprint: normalizeQuery('SELECT balance FROM fx_other WHERE id = 1 FOR UPDATE').fingerprint,
    });
    expect(field(blocker, 'transaction.duration_ms')).toBeGreaterThanOrEqual(200);
    expect(blocker.origin).toBeUndefined();
  });

  it('two blockers sharing a lock: both named', async () => {
    await accounts('fx_two');
    // SHARE is compatible with itself and blocks the UPDATE's ROW EXCLUSIVE: both sessions block it.
    const { pids, released } = await holdElsewhere('fx_two', 2, 700, 'LOCK TABLE fx_two IN SHARE MODE');
    const run = await runNode(fixture('forensics-app.mjs'), {
      env: SLOW,
      scriptArgs: ['wait-only', 'fx_two'],
    });
    await released;
    expect(run.code).toBe(0);
    const blockers = field(slowUpdate(run), 'db.query.blocked_by') as Record<string, unknown>[];
    expect(blockers.map((b) => b.pid)).toEqual([...pids].sort((x, y) => x - y));
    expect(blockers.map((b) => b.application_name).sort()).toEqual(['holder-1', 'holder-2']);
    expect(field(slowUpdate(run), 'db.query.wait')).toEqual({ type: 'Lock', event: 'relation' });
    for (const blocker of blockers)
      expect(field(blocker, 'query.text')).toBe('LOCK TABLE fx_two IN SHARE MODE');
  });

  it('PGSIGHT_FORENSICS_PER_S caps the samples; the records it skipped say so', async () => {
    await accounts('fx_rate');
    const { released } = await holdElsewhere('fx_rate', 1, 700, undefined, 3);
    const run = await runNode(fixture('forensics-app.mjs'), {
      env: { ...SLOW, WAITERS: '3', PGSIGHT_FORENSICS_PER_S: '1' },
      scriptArgs: ['wait-only', 'fx_rate'],
    });
    await released;
    expect(run.code).toBe(0);
    const records = byAction(run, 'db.query.slow').filter((r) =>
      String(field(r, 'db.query.text')).includes('fx_rate'),
    );
    expect(records).toHaveLength(3);
    const sampled = records.filter((r) => field(r, 'db.query.wait') !== undefined);
    const skipped = records.filter((r) => field(r, 'db.query.forensics.skipped') === 'rate');
    expect(sampled).toHaveLength(1);
    expect(skipped).toHaveLength(2);
    for (const record of skipped) expect(field(record, 'db.query.blocked_by')).toBeUndefined();
  });
});

describe('a query that hangs', () => {
  it('writes db.query.running at 10x the threshold, before it ends', async () => {
    await accounts('fx_hang');
    const run = await runNode(fixture('forensics-app.mjs'), {
      env: { PGSIGHT_SLOW_QUERY_MS: '100', HOLD_MS: '1600', PGSIGHT_TX_IDLE_MS: '0' },
      scriptArgs: ['hang', 'fx_hang'],
    });
    expect(run.code).toBe(0);
    const running = slowUpdate(run, 'db.query.running') as Record<string, unknown>;
    const slow = slowUpdate(run) as Record<string, unknown>;
    expect(running['log.level']).toBe('warn');
    expect(String(running.message)).toMatch(/^query still running after \d+/);
    expect(field(running, 'event.duration')).toBeGreaterThanOrEqual(1000e6);
    expect(field(running, 'event.duration')).toBeLessThan(field(slow, 'event.duration') as number);
    expect(run.records.indexOf(running)).toBeLessThan(run.records.indexOf(slow));
    expect(Date.parse(String(running['@timestamp']))).toBeLessThan(Date.parse(String(slow['@timestamp'])));
    for (const record of [running, slow]) {
      expect(field(record, 'db.query.wait')).toEqual({ type: 'Lock', event: 'transactionid' });
      expect((field(record, 'db.query.blocked_by') as { pid: number }[])[0]?.pid).toBe(
        summary(run).holderPid,
      );
    }
  });
});

describe("the app's pool exhausted", () => {
  it("forensics on pgsight's own connection, never one of the pool's", async () => {
    await accounts('fx_full');
    const run = await runNode(fixture('forensics-app.mjs'), {
      env: SLOW,
      scriptArgs: ['exhausted', 'fx_full'],
    });
    expect(run.code).toBe(0);
    const { holderPid, peak, max } = summary(run);
    expect(peak).toBe(max);
    const record = slowUpdate(run) as Record<string, unknown>;
    expect((field(record, 'db.query.blocked_by') as { pid: number }[])[0]?.pid).toBe(holderPid);
  });

  it('a server that refuses pgsight a connection: the sample is skipped and counted, the query unaffected', async () => {
    await accounts('fx_refused');
    await admin.query('DROP ROLE IF EXISTS pgsight_one_conn');
    await admin.query("CREATE ROLE pgsight_one_conn LOGIN CONNECTION LIMIT 1 PASSWORD 'one-conn-pw'");
    await admin.query('GRANT ALL ON fx_refused TO pgsight_one_conn');
    try {
      const url = new URL(databaseUrl);
      url.username = 'pgsight_one_conn';
      url.password = 'one-conn-pw';
      const { released } = await holdElsewhere('fx_refused', 1, 600);
      const run = await runNode(fixture('forensics-app.mjs'), {
        env: { ...SLOW, DATABASE_URL: url.href },
        scriptArgs: ['wait-only', 'fx_refused'],
      });
      await released;
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const record = slowUpdate(run) as Record<string, unknown>;
      expect(field(record, 'db.query.forensics.skipped')).toBe('connection');
      expect(field(record, 'db.query.blocked_by')).toBeUndefined();
    } finally {
      await admin.query('REVOKE ALL ON fx_refused FROM pgsight_one_conn');
      await admin.query('DROP ROLE pgsight_one_conn');
    }
  });
});

describe('plans of slow statements', () => {
  it('a generic plan per fingerprint and interval: the sequential scan, then the index; no value in it', async () => {
    await admin.query('DROP TABLE IF EXISTS fx_plan');
    await admin.query('CREATE TABLE fx_plan (id int, val text)');
    await admin.query("INSERT INTO fx_plan SELECT i, 'v' || i FROM generate_series(1, 100000) i");
    await admin.query('ANALYZE fx_plan');
    const run = await runNode(fixture('forensics-app.mjs'), {
      env: {
        PGSIGHT_SLOW_QUERY_MS: '30',
        PGSIGHT_EXPLAIN_INTERVAL_MS: '1500',
        PGSIGHT_EXPLAIN_EXCLUDE: 'excluded_one',
        PGSIGHT_LOG_PARAMS: 'false',
      },
      scriptArgs: ['plan', 'fx_plan'],
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const slow = byAction(run, 'db.query.slow').filter((r) =>
      String(field(r, 'db.query.text')).startsWith('SELECT b.id'),
    );
    const plans = slow.map((r) => field(r, 'db.query.plan') as Record<string, unknown> | undefined);
    // 5 runs, the index, the run after the interval, the literal statement, the excluded one.
    expect(slow).toHaveLength(8);
    const [first, ...rest] = plans.slice(0, 5);
    expect(first).toMatchObject({ seq_scans: ['fx_plan'], generic: true });
    expect(first?.total_cost).toBeGreaterThan(1000);
    expect(first?.rows).toEqual(expect.any(Number));
    expect(String(first?.text)).toContain('"Node Type":"Seq Scan"');
    expect(String(first?.text)).toContain('$1');
    expect(rest).toEqual([undefined, undefined, undefined, undefined]);
    const after = plans[5];
    expect(after?.seq_scans).toEqual([]);
    expect(String(after?.text)).toMatch(/"Node Type":"(Bitmap Heap Scan|Index Scan)"/);
    expect(String(after?.text)).toContain('fx_plan_val_idx');
    // The server folds a literal into the plan's filter: it is normalized away.
    const literal = plans[6];
    expect(literal).toMatchObject({ generic: false });
    expect(String(literal?.text)).toContain('(val = ?::text)');
    expect(plans[7]).toBeUndefined();
    const all = JSON.stringify(run.records);
    expect(all).not.toContain('secret-value');
    expect(all).not.toContain('literal-secret');
  });
});

describe("the server's query id", () => {
  it('db.query.id is the query_id the server computes (compute_query_id on), for pg_stat_statements', async () => {
    await accounts('fx_qid');
    const { released } = await holdElsewhere('fx_qid', 1, 600);
    const run = await runNode(fixture('forensics-app.mjs'), {
      env: { ...SLOW, PG_OPTIONS: '-c compute_query_id=on' },
      scriptArgs: ['wait-only', 'fx_qid'],
    });
    await released;
    expect(run.code).toBe(0);
    const id = field(slowUpdate(run), 'db.query.id');
    expect(id).toMatch(/^-?\d+$/);
    // The same statement, prepared here: EXPLAIN VERBOSE prints the server's identifier for it.
    const c = new pg.Client({ connectionString: databaseUrl, options: '-c compute_query_id=on' });
    await c.connect();
    try {
      await c.query(`PREPARE qid AS ${waiterText('fx_qid')}`);
      // Text format: the JSON one prints the 64-bit id as a number, which JSON.parse rounds.
      const { rows } = await c.query('EXPLAIN (VERBOSE) EXECUTE qid(1)');
      const line = rows.map((r) => String(r['QUERY PLAN'])).find((l) => l.startsWith('Query Identifier:'));
      expect(line).toBe(`Query Identifier: ${id}`);
    } finally {
      await c.end();
    }
  });
});
