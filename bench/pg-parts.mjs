// Part of npm run bench:pg: what N+1 counting and pool checkout timing cost per query, each measured apart
// in one process against the same work without it, in alternated blocks (CPU time, medians of blocks).
//   checkout: a real pg.Pool with one idle client, connect() + release(), through pgsight's timed connect
//             (wait and use-time bookkeeping) against pg-pool's own connect
//   counting: 8 statements counted in a request scope (opened, counted, closed: under the minimum, so no
//             record) against the same 8 calls outside any scope
//   in flight: a query's entry on forensics' in-flight list (linked at its start, unlinked at its end)
//             against none (forensics off)
// Then the cost of forensics' own work, per sample and per plan, on a connection of its own: client CPU
// and wall time, with the server's work in the wall time.
// Prints one JSON line: { checkoutUs, countUs, inFlightUs, sample: { cpuUs, wallMs }, plan: { ... } }.
import pg from 'pg';
import { currentLogScope } from '../dist/src/ecs/log-context.js';
import { closeTally, countQuery, setTallySettings, withQueryTally } from '../dist/src/ecs/query-tally.js';
import { normalizeQuery } from '../dist/src/pg/normalize.js';
import { explain } from '../dist/src/preload/explain.js';
import {
  queryEnded,
  queryStarted,
  sampleStatement,
  setForensicsSettings,
} from '../dist/src/preload/forensics.js';
import { setPoolWatchSettings, timedConnect, watchReleases } from '../dist/src/preload/pool-watch.js';

const url = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const BLOCKS = 21;
const CHECKOUTS = 20000;
const SCOPES = 50000;
const PER_SCOPE = 8;
const TEXT = 'SELECT $1::int AS id, $2::text AS name';

setTallySettings({ min: 10, ignore: undefined, normalize: undefined });
setPoolWatchSettings(100, { waitTime: undefined, useTime: undefined });

const cpu = async (fn) => {
  const t0 = process.cpuUsage();
  await fn();
  const t = process.cpuUsage(t0);
  return t.user + t.system;
};
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

const pool = new pg.Pool({ connectionString: url, max: 1 });
(await pool.connect()).release();
const original = pg.Pool.prototype.connect;
const checkout = (timed) =>
  new Promise((resolve, reject) => {
    const cb = (error, _client, release) => {
      if (error) return reject(error);
      release();
      resolve();
    };
    if (!timed) return original.call(pool, cb);
    watchReleases(pool);
    timedConnect(pool, original, cb, checkout);
  });
const checkouts = (timed) => async () => {
  for (let i = 0; i < CHECKOUTS; i++) await checkout(timed);
};

let sink = 0;
const scope = (counted) => () => {
  for (let i = 0; i < SCOPES; i++) {
    if (!counted) {
      for (let j = 0; j < PER_SCOPE; j++) sink += TEXT.length;
      continue;
    }
    withQueryTally('request', undefined, currentLogScope(), (tally, opened) => {
      for (let j = 0; j < PER_SCOPE; j++) {
        const count = countQuery(currentLogScope(), TEXT, undefined, scope);
        sink += count ? TEXT.length : 0;
      }
      if (opened) closeTally(tally);
    });
  }
};

const forensics = {
  slowMs: 500,
  perSecond: 10,
  plans: { intervalMs: 600_000, exclude: undefined },
  normalize: normalizeQuery,
  skipped: undefined,
  onRunning: () => {},
};
const client = {};
const inFlight = (on) => () => {
  setForensicsSettings(on ? forensics : undefined);
  for (let i = 0; i < SCOPES; i++) {
    const entry = queryStarted(client, TEXT, undefined, i, undefined, undefined);
    if (entry) queryEnded(entry);
  }
};

const plain = { checkout: [], count: [], inFlight: [] };
const added = { checkout: [], count: [], inFlight: [] };
for (let b = 0; b < BLOCKS; b++) {
  const order = b % 2 === 0 ? [false, true] : [true, false];
  for (const on of order) (on ? added : plain).checkout.push((await cpu(checkouts(on))) / CHECKOUTS);
  for (const on of order) (on ? added : plain).count.push((await cpu(scope(on))) / (SCOPES * PER_SCOPE));
  for (const on of order) (on ? added : plain).inFlight.push((await cpu(inFlight(on))) / SCOPES);
}
setForensicsSettings(undefined);
await pool.end();

// A sample and a plan, as forensics makes them, on a connection of their own.
const side = new pg.Client({ connectionString: url, application_name: 'pgsight forensics' });
await side.connect();
const other = new pg.Client({ connectionString: url });
await other.connect();
const version = Number((await side.query('SHOW server_version_num')).rows[0].server_version_num);
const run = (text, values, extended) =>
  side.query(extended ? { text, values, queryMode: 'extended' } : { text, values }).then((r) => r.rows);
const sideConnection = { query: run, serverVersion: version, exclusive: (fn) => fn(sideConnection) };
const timed = async (n, fn) => {
  const cpus = [];
  const walls = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    cpus.push(await cpu(fn));
    walls.push(performance.now() - t0);
  }
  return { cpuUs: median(cpus), wallMs: median(walls) };
};
const sampled = await timed(200, () => run(sampleStatement(version), [other.processID], true));
const planned = await timed(100, () => explain(sideConnection, TEXT, normalizeQuery));
await other.end();
await side.end();

const diff = (k) => median(added[k].map((x, i) => x - plain[k][i]));
process.stdout.write(
  `${JSON.stringify({ checkoutUs: diff('checkout'), countUs: diff('count'), inFlightUs: diff('inFlight'), plainCheckoutUs: median(plain.checkout), sample: sampled, plan: planned, sink: sink > 0 })}\n`,
);
