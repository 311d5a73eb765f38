'use strict';
// One benchmark run in its own process: a workload of small parameterized SELECTs, measured in this
// process's CPU time (user + system), so the database server's work is not counted.
// Prints one JSON line: { workload, queries, cpuUsPerQuery, wallMs }.
const pg = require('pg');

const url = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const workload = process.env.BENCH_WORKLOAD || 'sequential';
const queries = Number(process.env.BENCH_QUERIES || 20000);
const warmup = Math.min(2000, queries / 5);
const TEXT = 'SELECT $1::int AS id, $2::text AS name';
// BENCH_SCOPE=request (under the preload): every 8 queries run in one request scope, as the preload opens
// for each HTTP request, so each query is counted for N+1 (8 per scope: under the minimum, nothing reported).
const PER_SCOPE = 8;
const tally = process.env.BENCH_SCOPE === 'request' ? require('../dist/src/ecs/query-tally.js') : undefined;
const { currentLogScope } = tally ? require('../dist/src/ecs/log-context.js') : {};
function inScope(fn) {
  if (!tally) return fn();
  return tally.withQueryTally('request', undefined, currentLogScope(), (t, opened) =>
    fn().finally(() => opened && tally.closeTally(t)),
  );
}

async function sequential() {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const run = async (n) => {
    for (let i = 0; i < n; i += PER_SCOPE)
      await inScope(async () => {
        for (let j = i; j < Math.min(n, i + PER_SCOPE); j++) await client.query(TEXT, [j, 'x']);
      });
  };
  await run(warmup);
  const m = await measure(() => run(queries));
  await client.end();
  return m;
}

async function pooled() {
  const pool = new pg.Pool({ connectionString: url, max: 8 });
  const run = async (n) => {
    let next = 0;
    const worker = async () => {
      while (next < n) {
        const i = next;
        next += PER_SCOPE;
        await inScope(async () => {
          for (let j = i; j < Math.min(n, i + PER_SCOPE); j++) await pool.query(TEXT, [j, 'x']);
        });
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  };
  await run(warmup);
  const m = await measure(() => run(queries));
  await pool.end();
  return m;
}

async function measure(fn) {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const cpu = process.cpuUsage(cpu0);
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return { cpuUsPerQuery: (cpu.user + cpu.system) / queries, wallMs };
}

(workload === 'pool' ? pooled() : sequential()).then(
  (m) => {
    process.stdout.write(`${JSON.stringify({ workload, queries, ...m })}\n`);
  },
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
