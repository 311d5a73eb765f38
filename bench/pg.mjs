// npm run bench:pg — client-process CPU per query for bare pg, pgsight and the stock OTel SDK, on two
// workloads of small parameterized SELECTs. Every variant runs in its own process, interleaved over several
// rounds against one database; the median of the rounds is reported. Targets (issue #2):
//   (b)/(a) <= 1.10   pgsight preloaded, traces not sampled, vs bare pg
//   (c)/(d) <= 1.00   pgsight, traces sampled, vs stock sdk-node + instrumentation-pg, sampled
//   (e)/(a) <= 1.10   as (b), with every query counted for N+1 in a request scope (issue #22)
// Then bench/pg-parts.mjs: the CPU that N+1 counting, pool checkout timing and forensics' in-flight list add
// per query, each measured apart, and what a forensics sample and a plan cost.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const rounds = Number(process.env.BENCH_ROUNDS ?? 11);
const queries = Number(process.env.BENCH_QUERIES ?? 20000);

const variants = [
  { id: 'a', label: 'bare pg', args: [] },
  {
    id: 'b',
    label: 'pgsight, not sampled',
    args: ['--import', 'pgsight/register'],
    env: { OTEL_TRACES_SAMPLER: 'always_off' },
  },
  {
    id: 'e',
    label: 'pgsight, not sampled, N+1 counted',
    args: ['--import', 'pgsight/register'],
    env: { OTEL_TRACES_SAMPLER: 'always_off', BENCH_SCOPE: 'request' },
  },
  {
    id: 'c',
    label: 'pgsight, sampled, discarded',
    args: ['--import', './bench/baselines/pgsight-sampled.mjs'],
  },
  {
    id: 'd',
    label: 'stock OTel, sampled, discarded',
    args: ['--import', './bench/baselines/stock-otel.mjs'],
  },
];

function run(variant, workload) {
  const child = spawnSync(process.execPath, [...variant.args, 'bench/pg-workload.cjs'], {
    cwd: root,
    env: { ...process.env, ...variant.env, BENCH_WORKLOAD: workload, BENCH_QUERIES: String(queries) },
    encoding: 'utf8',
  });
  const line = child.stdout
    .trim()
    .split('\n')
    .findLast((l) => l.startsWith('{"workload"'));
  if (child.status !== 0 || !line) throw new Error(`${variant.label} / ${workload} failed:\n${child.stderr}`);
  return JSON.parse(line).cpuUsPerQuery;
}

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

console.log(`pg benchmark: ${queries} queries per run, ${rounds} rounds, node ${process.version}`);
const results = {};
const perRound = {};
for (const workload of ['sequential', 'pool']) {
  const samples = Object.fromEntries(variants.map((v) => [v.id, []]));
  // Each round runs every variant once, in alternating order (forward, then backward), so a drift of the
  // machine's speed during a round weighs on both sides of a ratio alike.
  for (let r = 0; r < rounds; r++)
    for (const v of r % 2 === 0 ? variants : [...variants].reverse()) samples[v.id].push(run(v, workload));
  perRound[workload] = samples;
  results[workload] = Object.fromEntries(variants.map((v) => [v.id, median(samples[v.id])]));
}

const fmt = (n) => n.toFixed(1).padStart(8);
console.log('\nCPU µs per query (median of rounds)');
console.log(`${'variant'.padEnd(36)}${'sequential'.padStart(12)}${'pool x8'.padStart(12)}`);
for (const v of variants) {
  console.log(
    `(${v.id}) ${v.label.padEnd(32)}${fmt(results.sequential[v.id])}    ${fmt(results.pool[v.id])}`,
  );
}
// A ratio is the median of the rounds' own ratios (both variants of a round ran minutes apart at most).
const ratio = (w, x, y) => median(perRound[w][x].map((value, r) => value / perRound[w][y][r]));
console.log('\nratio (median of per-round ratios)  sequential   pool x8   target');
for (const [x, y, target] of [
  ['b', 'a', 1.1],
  ['e', 'a', 1.1],
  ['e', 'b', null],
  ['c', 'd', 1.0],
  ['d', 'a', null],
]) {
  const s = ratio('sequential', x, y);
  const p = ratio('pool', x, y);
  const verdict =
    target === null
      ? '(reference)'
      : `<= ${target.toFixed(2)} ${s <= target && p <= target ? 'met' : 'NOT met'}`;
  console.log(
    `(${x})/(${y})                             ${s.toFixed(3).padStart(6)}      ${p.toFixed(3).padStart(6)}   ${verdict}`,
  );
}

// The preload's wrappers against pg's own functions, in one process (bench/pg-inprocess.cjs).
const inProcess = (workload) => {
  const child = spawnSync(process.execPath, ['--import', 'pgsight/register', 'bench/pg-inprocess.cjs'], {
    cwd: root,
    env: { ...process.env, OTEL_TRACES_SAMPLER: 'always_off', BENCH_WORKLOAD: workload },
    encoding: 'utf8',
  });
  if (child.status !== 0) throw new Error(`bench/pg-inprocess.cjs failed:\n${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').at(-1));
};
const [seq, pooled] = [inProcess('sequential'), inProcess('pool')];
console.log(
  `(b)/(a) in one process (pg's own functions and pgsight's wrappers in alternated blocks): sequential ${seq.ratio.toFixed(3)} (${seq.bare.toFixed(1)} / ${seq.pgsight.toFixed(1)} µs), pool x8 ${pooled.ratio.toFixed(3)} (${pooled.bare.toFixed(1)} / ${pooled.pgsight.toFixed(1)} µs); target <= 1.10 ${seq.ratio <= 1.1 && pooled.ratio <= 1.1 ? 'met' : 'NOT met'}`,
);

const parts = spawnSync(process.execPath, ['bench/pg-parts.mjs'], { cwd: root, encoding: 'utf8' });
if (parts.status !== 0) throw new Error(`bench/pg-parts.mjs failed:\n${parts.stderr}`);
const part = JSON.parse(parts.stdout.trim().split('\n').at(-1));
const share = (us) => `${((us / results.pool.a) * 100).toFixed(1)}% of a bare pooled query`;
console.log('\nadded CPU, measured apart (one process, alternated blocks, medians)');
console.log(
  `  N+1 counting, per query (8 per request scope): ${part.countUs.toFixed(3)} µs, ${share(part.countUs)}`,
);
console.log(
  `  pool checkout timing, per checkout:             ${part.checkoutUs.toFixed(3)} µs, ${share(part.checkoutUs)} (pg-pool's own checkout: ${part.plainCheckoutUs.toFixed(2)} µs)`,
);
console.log(
  `  forensics' in-flight list, per query:           ${part.inFlightUs.toFixed(3)} µs, ${share(part.inFlightUs)}`,
);
console.log('\nforensics, per slow query (medians; wall time includes the server)');
console.log(
  `  a sample (pg_stat_activity + pg_blocking_pids): ${part.sample.cpuUs.toFixed(0)} µs CPU, ${part.sample.wallMs.toFixed(2)} ms wall`,
);
console.log(
  `  a plan (generic EXPLAIN, read-only transaction):  ${part.plan.cpuUs.toFixed(0)} µs CPU, ${part.plan.wallMs.toFixed(2)} ms wall`,
);
