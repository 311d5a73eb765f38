// One process of the transaction benchmark: alternating blocks of hand-written transactions (BEGIN /
// 3 statements / COMMIT on a pooled client) and the same statements in transaction(), so both run with the
// same heap, JIT state and machine load. 4 workers share a pool of 4.
// Prints { blocks, perBlock, manualUsPerTx, pgsightUsPerTx } (client-process CPU).
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
};

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

await run(modes.manual, 400);
await run(modes.pgsight, 400);
// Short blocks in adjacent pairs: machine noise (this VM's CPU time per unit of work drifts by tens of
// percent over seconds) hits both halves of a pair alike, and the median pair ratio ignores the outliers.
const total = { manual: 0, pgsight: 0 };
const ratios = [];
for (let b = 0; b < blocks; b++) {
  // Alternate which goes first, so neither always follows the other.
  const order = b % 2 ? ['pgsight', 'manual'] : ['manual', 'pgsight'];
  const pair = {};
  for (const mode of order) pair[mode] = await cpu(modes[mode], perBlock);
  total.manual += pair.manual;
  total.pgsight += pair.pgsight;
  ratios.push(pair.pgsight / pair.manual);
}
await pool.end();
const n = blocks * perBlock;
const medianRatio = ratios.sort((x, y) => x - y)[Math.floor(ratios.length / 2)];
console.log(
  JSON.stringify({
    blocks,
    perBlock,
    manualUsPerTx: total.manual / n,
    pgsightUsPerTx: total.pgsight / n,
    medianRatio,
  }),
);
