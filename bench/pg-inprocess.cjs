'use strict';
// Part of npm run bench:pg, run under the preload: the preload's cost per query measured in one process, so
// the machine's state is the same on both sides. Blocks of the pool workload alternate between pg's own
// functions (Client.prototype.query, Pool.prototype.connect and .query as pg defines them, read from the
// wrappers' `__original`) and pgsight's wrappers, on the same pool and connections; CPU per query, median of
// the blocks. What this leaves out is what the preload costs outside pg's functions (its hooks, its timers).
// Prints one JSON line: { bare, pgsight } (CPU µs per query).
const pg = require('pg');
const Pool = require('pg-pool');

const url = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const BLOCKS = Number(process.env.BENCH_BLOCKS || 21);
const PER_BLOCK = 2000;
const TEXT = 'SELECT $1::int AS id, $2::text AS name';

const clientProto = pg.Client.prototype;
const poolProto = Pool.prototype;
const wrapped = { query: clientProto.query, connect: poolProto.connect, poolQuery: poolProto.query };
const original = {
  query: wrapped.query.__original,
  connect: wrapped.connect.__original,
  poolQuery: wrapped.poolQuery.__original,
};
if (!original.query || !original.connect || !original.poolQuery) {
  console.error('run under the preload: node --import pgsight/register bench/pg-inprocess.cjs');
  process.exit(1);
}
const use = (fns) => {
  clientProto.query = fns.query;
  poolProto.connect = fns.connect;
  poolProto.query = fns.poolQuery;
};

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

const sequential = process.env.BENCH_WORKLOAD === 'sequential';

async function block(db) {
  let next = 0;
  const worker = async () => {
    while (next < PER_BLOCK) {
      const i = next++;
      await db.query(TEXT, [i, 'x']);
    }
  };
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: sequential ? 1 : 8 }, worker));
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / PER_BLOCK;
}

(async () => {
  const pool = new pg.Pool({ connectionString: url, max: 8 });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const db = sequential ? client : pool;
  await block(db); // warm-up, connections opened through the wrappers
  const bare = [];
  const pgsight = [];
  for (let b = 0; b < BLOCKS; b++) {
    for (const side of b % 2 === 0 ? ['bare', 'pgsight'] : ['pgsight', 'bare']) {
      use(side === 'bare' ? original : wrapped);
      (side === 'bare' ? bare : pgsight).push(await block(db));
    }
  }
  use(wrapped);
  await client.end();
  await pool.end();
  const ratios = pgsight.map((x, i) => x / bare[i]);
  process.stdout.write(
    `${JSON.stringify({ bare: median(bare), pgsight: median(pgsight), ratio: median(ratios) })}\n`,
  );
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
