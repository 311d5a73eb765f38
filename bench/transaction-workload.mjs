// One process of the transaction benchmark: alternating blocks of hand-written transactions (BEGIN /
// 3 statements / COMMIT on a pooled client), the same statements in transaction(), and in a bare wrapper (the
// floor: what any transaction() with a current-transaction accessor costs), so all run with the same heap,
// JIT state and machine load. 4 workers share a pool of 4.
// Prints { blocks, perBlock, manualUsPerTx, pgsightUsPerTx, bareUsPerTx, medianRatio, bareMedianRatio }
// (client-process CPU).
import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { transaction } from 'pgsight';

const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const blocks = Number(process.env.BENCH_TX_BLOCKS ?? 40);
const perBlock = Number(process.env.BENCH_TX_PER_BLOCK ?? 200);
const pool = new pg.Pool({ connectionString: url, max: 4 });

const statements = async (q) => {
  await q('SELECT $1::int AS a', [1]);
  await q('SELECT $1::text AS b', ['x']);
  await q('SELECT $1::int + 1 AS c', [2]);
};

// The floor, for reference only: an attempt loop that runs the function in an AsyncLocalStorage context with
// a wrapper object whose `query` is the client's, and nothing else: no options, retries, nesting, watchdog,
// telemetry or error guard.
const current = new AsyncLocalStorage();
class BareTx {
  constructor(client) {
    this.client = client;
  }
  query(text, values) {
    return this.client.query(text, values);
  }
}
async function bareTransaction(fn) {
  const client = await pool.connect();
  const tx = new BareTx(client);
  try {
    await tx.query('BEGIN');
    const result = await current.run(tx, fn, tx);
    await client.query('COMMIT');
    client.release();
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    client.release(error);
    throw error;
  }
}

const modes = {
  manual: async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await statements((text, values) => client.query(text, values));
      await client.query('COMMIT');
      client.release();
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      client.release(error);
      throw error;
    }
  },
  pgsight: () => transaction(pool, (tx) => statements((text, values) => tx.query(text, values))),
  bare: () => bareTransaction((tx) => statements((text, values) => tx.query(text, values))),
};
const names = Object.keys(modes);

async function run(one, n) {
  let next = 0;
  const worker = async () => {
    while (next++ < n) await one();
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

async function cpu(one, n) {
  const c0 = process.cpuUsage();
  await run(one, n);
  const c = process.cpuUsage(c0);
  return c.user + c.system;
}

for (const mode of names) await run(modes[mode], 400);
// Short blocks side by side: machine noise (this VM's CPU time per unit of work drifts by tens of percent
// over seconds) hits adjacent blocks alike, and the median ratio ignores the outliers.
const total = { manual: 0, pgsight: 0, bare: 0 };
const ratios = { pgsight: [], bare: [] };
for (let b = 0; b < blocks; b++) {
  // Alternate the order, so that no mode always follows another.
  const order = b % 2 ? [...names].reverse() : names;
  const block = {};
  for (const mode of order) block[mode] = await cpu(modes[mode], perBlock);
  for (const mode of names) total[mode] += block[mode];
  ratios.pgsight.push(block.pgsight / block.manual);
  ratios.bare.push(block.bare / block.manual);
}
await pool.end();
const n = blocks * perBlock;
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
console.log(
  JSON.stringify({
    blocks,
    perBlock,
    manualUsPerTx: total.manual / n,
    pgsightUsPerTx: total.pgsight / n,
    bareUsPerTx: total.bare / n,
    medianRatio: median(ratios.pgsight),
    bareMedianRatio: median(ratios.bare),
  }),
);
