// examples/ledger, the reference service, run as users run it: its API contract, its correctness under
// concurrent load (and with database backends killed mid-load), its graceful shutdown, and what it logs.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, type RunningLedger, startLedger } from './support/ledger.js';
import { field } from './support/run-node.js';
import { preparedTransactionsEnabled, secondDatabaseUrl } from './support/second-database.js';

const get = (ledger: RunningLedger, path: string) => call(ledger.url, 'GET', path);
const post = (ledger: RunningLedger, path: string, body?: unknown, headers?: Record<string, string>) =>
  call(ledger.url, 'POST', path, body, headers);

async function openAccounts(ledger: RunningLedger, count: number, balance: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push((await post(ledger, '/accounts', { balance })).body.id);
  return ids;
}

/** Balances as PostgreSQL has them, and whether they agree with the transfer history. */
async function audit(ledger: RunningLedger, ids: number[], opening: number) {
  const { rows } = await ledger.schema.pool.query<{ id: string; balance: string; history: string }>(
    `SELECT a.id, a.balance,
            $2::bigint + coalesce((SELECT sum(amount) FROM transfers WHERE to_id = a.id), 0)
                       - coalesce((SELECT sum(amount) FROM transfers WHERE from_id = a.id), 0) AS history
       FROM accounts a WHERE a.id = ANY($1) ORDER BY a.id`,
    [ids, opening],
  );
  return {
    total: rows.reduce((sum, r) => sum + Number(r.balance), 0),
    negative: rows.filter((r) => Number(r.balance) < 0),
    disagreeing: rows.filter((r) => r.balance !== r.history),
  };
}

/** `workers` clients sending `jobs` one after another, each job one or more requests. */
async function load<T>(jobs: (() => Promise<T>)[], workers: number): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < jobs.length) {
        const job = jobs[next++] as () => Promise<T>;
        results.push(await job());
      }
    }),
  );
  return results;
}

const random = (n: number) => Math.floor(Math.random() * n);

describe('API', () => {
  let ledger: RunningLedger;
  beforeAll(async () => {
    ledger = await startLedger('ledger_api');
  });
  afterAll(() => ledger.stop());

  it('accounts: create, list, read; 400 naming the field, 404 for an unknown id', async () => {
    const created = await post(ledger, '/accounts', { balance: 1000 });
    expect(created).toMatchObject({ status: 201, body: { id: expect.any(Number), balance: 1000 } });
    for (const balance of [-1, 1.5, '10', undefined])
      expect(await post(ledger, '/accounts', { balance })).toMatchObject({
        status: 400,
        body: { fields: { balance: expect.stringContaining('whole number') } },
      });
    expect((await get(ledger, '/accounts')).body).toContainEqual({ id: created.body.id, balance: 1000 });
    expect(await get(ledger, `/accounts/${created.body.id}`)).toMatchObject({
      status: 200,
      body: created.body,
    });
    expect(await get(ledger, '/accounts/999999')).toMatchObject({
      status: 404,
      body: { error: 'account not found' },
    });
    expect(await get(ledger, '/accounts/abc')).toMatchObject({
      status: 400,
      body: { fields: { id: expect.any(String) } },
    });
    expect(await get(ledger, '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect((await get(ledger, '/nowhere')).status).toBe(404);
    expect((await call(ledger.url, 'DELETE', '/accounts')).status).toBe(405);
  });

  it('transfers: 201, then every error status with a body that says what was wrong', async () => {
    const [a, b] = (await openAccounts(ledger, 2, 1000)) as [number, number];
    const moved = await post(ledger, '/transfers', { from: a, to: b, amount: 300 });
    expect(moved).toMatchObject({
      status: 201,
      body: { id: expect.any(Number), from: a, to: b, amount: 300 },
    });
    expect((await get(ledger, `/accounts/${a}`)).body.balance).toBe(700);
    expect((await get(ledger, `/accounts/${b}`)).body.balance).toBe(1300);
    expect(await get(ledger, `/transfers/${moved.body.id}`)).toMatchObject({
      status: 200,
      body: { id: moved.body.id, from: a, to: b, amount: 300, createdAt: expect.any(String) },
    });
    expect((await get(ledger, `/accounts/${b}/transfers`)).body).toContainEqual(
      expect.objectContaining({ id: moved.body.id }),
    );
    expect((await get(ledger, '/transfers/999999')).status).toBe(404);
    expect((await get(ledger, '/accounts/999999/transfers')).status).toBe(404);

    expect(await post(ledger, '/transfers', { from: a, to: b, amount: 701 })).toMatchObject({
      status: 422,
      body: { error: 'insufficient funds', account: a },
    });
    expect(await post(ledger, '/transfers', { from: a, to: 999999, amount: 1 })).toMatchObject({
      status: 404,
      body: { error: 'account not found', accounts: [999999] },
    });
    expect(await post(ledger, '/transfers', { from: a, to: a, amount: 0 })).toMatchObject({
      status: 400,
      body: { fields: { to: 'must differ from "from"', amount: expect.any(String) } },
    });
    expect(await post(ledger, '/transfers', { from: 'x', amount: 1.5 })).toMatchObject({
      status: 400,
      body: { fields: { from: expect.any(String), to: expect.any(String), amount: expect.any(String) } },
    });
    expect(await post(ledger, '/transfers', '{"from": 1,')).toMatchObject({
      status: 400,
      body: { fields: { body: 'is not valid JSON' } },
    });
    // Nothing of the refused transfers moved money.
    expect((await get(ledger, `/accounts/${a}`)).body.balance).toBe(700);
  });

  it('Idempotency-Key: a replay returns the original answer, a different body is 409, concurrent replays apply once', async () => {
    const [a, b] = (await openAccounts(ledger, 2, 1000)) as [number, number];
    const key = { 'idempotency-key': `key-${Date.now()}` };
    const first = await post(ledger, '/transfers', { from: a, to: b, amount: 100 }, key);
    const again = await post(ledger, '/transfers', { from: a, to: b, amount: 100 }, key);
    expect(again).toMatchObject({ status: 201, body: first.body });
    expect(await post(ledger, '/transfers', { from: a, to: b, amount: 101 }, key)).toMatchObject({
      status: 409,
      body: { error: expect.stringContaining('different request') },
    });
    const racing = { 'idempotency-key': `race-${Date.now()}` };
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => post(ledger, '/transfers', { from: a, to: b, amount: 50 }, racing)),
    );
    expect(answers.map((r) => r.status)).toEqual([201, 201, 201, 201, 201, 201]);
    expect(new Set(answers.map((r) => r.body.id)).size).toBe(1);
    expect((await get(ledger, `/accounts/${a}`)).body.balance).toBe(850);
  });

  it('logs one completion record per request with the request id and trace id; a 500 has no internals', async () => {
    const ok = await call(ledger.url, 'GET', '/healthz', undefined, { 'x-request-id': 'req-health' });
    expect(ok.headers.get('x-request-id')).toBe('req-health');
    await ledger.schema.pool.query('ALTER TABLE transfers RENAME TO transfers_gone');
    const failed = await call(ledger.url, 'GET', '/transfers/1', undefined, { 'x-request-id': 'req-broken' });
    await ledger.schema.pool.query('ALTER TABLE transfers_gone RENAME TO transfers');
    expect(failed).toMatchObject({ status: 500, body: { error: 'internal server error' } });
    expect(JSON.stringify(failed.body)).not.toMatch(/relation|transfers|42P01/);
    await new Promise((resolve) => setTimeout(resolve, 300)); // the transport's worker writes asynchronously
    const records = ledger.records().filter((r) => field(r, 'http.request.id') === 'req-broken');
    const completion = records.filter((r) => field(r, 'http.response.status_code') !== undefined);
    expect(completion).toHaveLength(1);
    expect(completion[0]).toMatchObject({ 'log.level': 'error' });
    expect(field(completion[0] as Record<string, unknown>, 'error.message')).toMatch(/transfers/);
    expect(field(completion[0] as Record<string, unknown>, 'trace.id')).toMatch(/^[0-9a-f]{32}$/);
    // pgsight's own record of the failed query carries the same request id.
    expect(records.some((r) => field(r, 'event.action') === 'db.query.error')).toBe(true);
  });

  it('the daily report is slow on purpose: its slow-query record names the request', async () => {
    const report = await call(ledger.url, 'GET', '/reports/daily', undefined, {
      'x-request-id': 'req-report',
    });
    expect(report.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const slow = ledger
      .records()
      .filter(
        (r) => field(r, 'event.action') === 'db.query.slow' && field(r, 'http.request.id') === 'req-report',
      );
    expect(slow).toHaveLength(1);
    expect(field(slow[0] as Record<string, unknown>, 'db.query.text')).toMatch(/pg_sleep/);
  });
});

describe('under load', () => {
  it('20 accounts, 16 clients, 2,000 random transfers with replayed keys: money is conserved, keys apply once', async () => {
    const ledger = await startLedger('ledger_load');
    try {
      const ids = await openAccounts(ledger, 20, 10_000);
      const answers: { status: number; id?: number; key?: string; request: Record<string, number> }[] = [];
      const send = async (request: Record<string, number>, key?: string) => {
        const r = await post(ledger, '/transfers', request, key ? { 'idempotency-key': key } : {});
        answers.push({ status: r.status, id: r.body?.id, ...(key ? { key } : {}), request });
      };
      const jobs = Array.from({ length: 2_000 }, (_, n) => {
        const from = ids[random(20)] as number;
        let to = ids[random(20)] as number;
        if (to === from) to = ids[(ids.indexOf(from) + 1) % 20] as number;
        const request = { from, to, amount: 1 + random(3_000) };
        if (n % 10 === 0) {
          // a client retrying: the same key twice at once, and once more after
          const key = `load-${n}`;
          return async () => {
            await Promise.all([send(request, key), send(request, key)]);
            await send(request, key);
          };
        }
        return () => send(request);
      });
      await load(jobs, 16);

      const statuses = new Set(answers.map((a) => a.status));
      expect([...statuses].every((s) => s === 201 || s === 422)).toBe(true);
      const books = await audit(ledger, ids, 10_000);
      expect(books.total).toBe(200_000);
      expect(books.negative).toEqual([]);
      expect(books.disagreeing).toEqual([]);
      // Each key: one transfer, the same answer every time.
      const byKey = new Map<string, Set<number | undefined>>();
      for (const a of answers.filter((a) => a.key && a.status === 201))
        byKey.set(a.key as string, (byKey.get(a.key as string) ?? new Set()).add(a.id));
      for (const ids of byKey.values()) expect(ids.size).toBe(1);
      const keyed = await ledger.schema.pool.query('SELECT count(*)::int AS n FROM idempotency_keys');
      expect(keyed.rows[0].n).toBe(byKey.size);
      // Every 201 is in the history, as answered.
      const created = new Map(answers.filter((a) => a.status === 201).map((a) => [a.id, a.request]));
      const { rows } = await ledger.schema.pool.query('SELECT id, from_id, to_id, amount FROM transfers');
      expect(rows).toHaveLength(created.size);
      for (const row of rows)
        expect(created.get(Number(row.id))).toEqual({
          from: Number(row.from_id),
          to: Number(row.to_id),
          amount: Number(row.amount),
        });
      expect(created.size).toBeGreaterThan(1_000);
    } finally {
      await ledger.stop();
    }
  });

  it('database backends terminated mid-load: the service recovers and no transfer is half-applied', async () => {
    const ledger = await startLedger('ledger_kill');
    try {
      const ids = await openAccounts(ledger, 10, 10_000);
      const application = `ledger-${ledger.schema.schema}`;
      let killing = true;
      let killed = 0;
      const killer = (async () => {
        while (killing) {
          const { rowCount } = await ledger.schema.pool.query(
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
            [application],
          );
          killed += rowCount ?? 0;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
      let statuses: number[];
      try {
        statuses = await load(
          Array.from({ length: 600 }, () => async () => {
            const from = ids[random(10)] as number;
            const to = ids[(ids.indexOf(from) + 1 + random(9)) % 10] as number;
            return (await post(ledger, '/transfers', { from, to, amount: 1 + random(500) })).status;
          }),
          8,
        );
      } finally {
        killing = false;
        await killer;
      }
      expect(killed).toBeGreaterThan(0);
      expect(statuses.filter((s) => s === 201).length).toBeGreaterThan(0);
      // Recovered: healthy, and transfers go through again.
      expect((await get(ledger, '/healthz')).status).toBe(200);
      expect((await post(ledger, '/transfers', { from: ids[0], to: ids[1], amount: 1 })).status).toBe(201);
      const books = await audit(ledger, ids, 10_000);
      expect(books.total).toBe(100_000);
      expect(books.negative).toEqual([]);
      expect(books.disagreeing).toEqual([]);
    } finally {
      const run = await ledger.stop();
      // The ledger must have survived: a crash would show here, with its reason.
      expect(run.stderr).not.toMatch(/Error|node:internal/);
      expect(run.code).toBe(0);
    }
  });
});

describe('operations', () => {
  it('SIGTERM: stops accepting, finishes the request in flight, closes the pool, exits 0', async () => {
    const ledger = await startLedger('ledger_stop');
    const report = get(ledger, '/reports/daily'); // takes 600 ms
    await new Promise((resolve) => setTimeout(resolve, 150));
    ledger.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expect(fetch(`${ledger.url}/healthz`)).rejects.toThrow(); // no longer accepting
    expect((await report).status).toBe(200);
    const run = await ledger.stop();
    expect(run.code).toBe(0);
    const messages = run.records.map((r) => String(r.message));
    const stopping = messages.indexOf('shutting down: finishing in-flight requests');
    const completed = run.records.findIndex((r) => field(r, 'url.path') === '/reports/daily');
    expect(stopping).toBeGreaterThanOrEqual(0);
    expect(completed).toBeGreaterThan(stopping);
    expect(messages.indexOf('stopped')).toBeGreaterThan(completed);
  });

  it('an outbound call inside the transaction is flagged idle-in-transaction; outside it is not', async () => {
    const env = { PGSIGHT_TX_IDLE_MS: '150', LEDGER_PARTNER_DELAY_MS: '400' };
    for (const inside of [false, true]) {
      const ledger = await startLedger('ledger_receipt', { ...env, LEDGER_CALL_INSIDE_TX: String(inside) });
      try {
        const [a, b] = (await openAccounts(ledger, 2, 100)) as [number, number];
        const moved = await post(ledger, '/transfers', { from: a, to: b, amount: 5 });
        expect(await post(ledger, `/transfers/${moved.body.id}/receipt`)).toMatchObject({
          status: 200,
          body: { receipt: 'sent' },
        });
      } finally {
        const run = await ledger.stop();
        const idle = run.records.filter((r) => field(r, 'event.action') === 'db.transaction.idle');
        if (inside) {
          expect(idle).toHaveLength(1);
          expect(String(field(idle[0] as Record<string, unknown>, 'log.origin.file.name'))).toMatch(
            /ledger\/app\.ts$/,
          );
        } else expect(idle).toEqual([]);
      }
    }
  });
});

describe('inter-ledger transfers (two-phase commit across two databases)', () => {
  let ledger: RunningLedger;
  let ledgerB: pg.Pool;
  beforeAll(async () => {
    await preparedTransactionsEnabled();
    const urlB = await secondDatabaseUrl();
    ledger = await startLedger('ledger_inter');
    ledgerB = new pg.Pool({ connectionString: urlB, options: `-c search_path=${ledger.schema.schema}` });
  });
  afterAll(async () => {
    await ledgerB.end();
    await ledger.stop();
  });

  it('moves money between the ledgers both ways, refuses what it must, and conserves the total', async () => {
    const [inA] = await openAccounts(ledger, 1, 1000);
    const inB = (await post(ledger, '/interledger/accounts', { balance: 500 })).body;
    expect(inB).toMatchObject({ id: expect.any(Number), balance: 500, ledger: 'b' });
    const moved = await post(ledger, '/interledger/transfers', { from: inA, to: inB.id, amount: 300 });
    expect(moved).toMatchObject({
      status: 201,
      body: {
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        from: inA,
        to: inB.id,
        amount: 300,
        direction: 'a_to_b',
      },
    });
    expect((await get(ledger, `/accounts/${inA}`)).body.balance).toBe(700);
    expect((await get(ledger, `/interledger/accounts/${inB.id}`)).body.balance).toBe(800);
    const back = await post(ledger, '/interledger/transfers', {
      from: inB.id,
      to: inA,
      amount: 50,
      direction: 'b_to_a',
    });
    expect(back.status).toBe(201);
    expect((await get(ledger, `/accounts/${inA}`)).body.balance).toBe(750);
    expect(
      await post(ledger, '/interledger/transfers', { from: inA, to: inB.id, amount: 5000 }),
    ).toMatchObject({
      status: 422,
      body: { error: 'insufficient funds', ledger: 'a' },
    });
    expect(await post(ledger, '/interledger/transfers', { from: inA, to: 999999, amount: 1 })).toMatchObject({
      status: 404,
      body: { ledger: 'b', accounts: [999999] },
    });
    expect(
      await post(ledger, '/interledger/transfers', { from: inA, to: inB.id, amount: 1, direction: 'up' }),
    ).toMatchObject({ status: 400, body: { fields: { direction: expect.any(String) } } });
    // Each side of each transfer is a leg in its ledger, and the legs of one transfer cancel out.
    const legs = [
      ...(await ledger.schema.pool.query('SELECT global_id, amount::int FROM interledger_legs')).rows,
      ...(await ledgerB.query('SELECT global_id, amount::int FROM interledger_legs')).rows,
    ];
    const byTransfer = new Map<string, number>();
    for (const leg of legs) byTransfer.set(leg.global_id, (byTransfer.get(leg.global_id) ?? 0) + leg.amount);
    expect([...byTransfer.values()]).toEqual([0, 0]);
  });

  it('under concurrent transfers both ways, nothing is half-applied and nothing stays prepared', async () => {
    const accountsA = await openAccounts(ledger, 3, 1000);
    const accountsB: number[] = [];
    for (let i = 0; i < 3; i++)
      accountsB.push((await post(ledger, '/interledger/accounts', { balance: 1000 })).body.id);
    const statuses = await load(
      Array.from({ length: 40 }, (_, i) => async () => {
        const [a, b] = [accountsA[random(3)] as number, accountsB[random(3)] as number];
        const body =
          i % 2 === 0
            ? { from: a, to: b, amount: 1 + random(300) }
            : { from: b, to: a, amount: 1 + random(300), direction: 'b_to_a' };
        return (await post(ledger, '/interledger/transfers', body)).status;
      }),
      8,
    );
    expect(statuses.every((s) => s === 201 || s === 422)).toBe(true);
    const sumA = await ledger.schema.pool.query(
      'SELECT sum(balance)::int AS s FROM accounts WHERE id = ANY($1)',
      [accountsA],
    );
    const sumB = await ledgerB.query('SELECT sum(balance)::int AS s FROM accounts WHERE id = ANY($1)', [
      accountsB,
    ]);
    expect(sumA.rows[0].s + sumB.rows[0].s).toBe(6000);
    const inDoubt = await ledgerB.query(
      "SELECT count(*)::int AS n FROM pg_prepared_xacts WHERE gid LIKE 'pgsight%'",
    );
    expect(inDoubt.rows[0].n).toBe(0);
  });
});
