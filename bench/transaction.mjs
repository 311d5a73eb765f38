// npm run bench:transaction — transaction() around 3 small statements vs the same BEGIN / statements / COMMIT
// written by hand on the same pool, in client-process CPU per transaction; the variants side by side in each
// process (bench/transaction-workload.mjs), processes without and with the preload alternating, medians
// reported. Target (issue #5): ratio <= 1.05 without the preload, with the
// client and PostgreSQL on separate CPUs as in production (bench/cpu-placement.mjs; shared CPUs are measured
// and reported too). Also reported: the ratio with the preload, the floor (a bare wrapper with only an
// AsyncLocalStorage context, measured in the same blocks), and the cost of capturing the opening code
// location (watchdog).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { separateCpus } from './cpu-placement.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function run(preload, prefix) {
  const args = [
    ...prefix,
    process.execPath,
    ...(preload ? ['--import', 'pgsight/register'] : []),
    'bench/transaction-workload.mjs',
  ];
  const child = spawnSync(args[0], args.slice(1), {
    cwd: root,
    env: { ...process.env, OTEL_TRACES_SAMPLER: 'always_off' },
    encoding: 'utf8',
  });
  const line = child.stdout
    .trim()
    .split('\n')
    .findLast((l) => l.startsWith('{"blocks"'));
  if (child.status !== 0 || !line) throw new Error(`workload failed:\n${child.stderr}`);
  return JSON.parse(line);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Medians over `rounds` processes, without and with the preload alternating.
function measure(prefix) {
  const samples = {
    manual: [],
    pgsight: [],
    ratio: [],
    bare: [],
    ratioBare: [],
    manualPre: [],
    pgsightPre: [],
    ratioPre: [],
  };
  for (let r = 0; r < rounds; r++) {
    const plain = run(false, prefix);
    samples.manual.push(plain.manualUsPerTx);
    samples.pgsight.push(plain.pgsightUsPerTx);
    samples.ratio.push(plain.medianRatio);
    samples.bare.push(plain.bareUsPerTx);
    samples.ratioBare.push(plain.bareMedianRatio);
    const pre = run(true, prefix);
    samples.manualPre.push(pre.manualUsPerTx);
    samples.pgsightPre.push(pre.pgsightUsPerTx);
    samples.ratioPre.push(pre.medianRatio);
  }
  return Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
}

const placement = await separateCpus(url);
const separate = placement.prefix ? measure(placement.prefix) : undefined;
placement.restore?.();
const shared = measure([]);

// The watchdog's origin capture, in-process, through pgsight's own captureOrigin: `cached` (the default:
// the function's source text looked up, the stack captured on first use and every 256th) and `exact`.
const { captureOrigin, setWatchdogThresholds } = await import('../dist/src/transaction/watchdog.js');
const N = 200_000;
const body = async () => {};
function open() {
  return captureOrigin(open, body);
}
// One call site for warm-up and measurement: to the cache, two loops would be two places opening `body`.
const openTimes = (n) => {
  for (let i = 0; i < n; i++) open();
};
function originUs(origin) {
  setWatchdogThresholds({ warnMs: 5000, idleMs: 1000, origin });
  openTimes(10_000);
  const c0 = process.cpuUsage();
  openTimes(N);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / N;
}
const capture = { cached: originUs('cached'), exact: originUs('exact') };

console.log(
  `transaction benchmark: 4 workers, pool of 4; ${rounds} processes per placement, each running 40 adjacent groups of 200-transaction blocks; node ${process.version}`,
);
if (separate)
  console.log(
    `separate CPUs: PostgreSQL on ${placement.serverCpus}, the client on CPU ${placement.clientCpu}`,
  );
console.log('\nCPU µs per transaction (BEGIN + 3 SELECTs + COMMIT, median)');
console.log(`                                     hand-written   transaction()   ratio   target`);
// The ratio: median over processes of each process's median pair ratio (both modes measured side by side).
const row = (label, a, b, ratio, target) =>
  console.log(
    `${label.padEnd(37)}${a.toFixed(1).padStart(12)}${b.toFixed(1).padStart(16)}${ratio.toFixed(3).padStart(8)}   ${
      target ? `<= ${target} ${ratio <= target ? 'met' : 'NOT met'}` : '(reported)'
    }`,
  );
const rows = (where, m, target) => {
  row(`${where}, without the preload`, m.manual, m.pgsight, m.ratio, target);
  row(`${where}, with the preload`, m.manualPre, m.pgsightPre, m.ratioPre, null);
  // The floor: BEGIN, the function in an AsyncLocalStorage context, COMMIT, and no feature
  // (bench/transaction-workload.mjs).
  row(`${where}, bare wrapper (floor)`, m.manual, m.bare, m.ratioBare, null);
};
if (separate) rows('separate CPUs', separate, 1.05);
else console.log(`separate CPUs: not measured, ${placement.reason}; the target is checked on shared CPUs`);
rows('shared CPUs', shared, separate ? null : 1.05);
console.log(
  `\nwatchdog origin capture, µs per transaction: ${capture.cached.toFixed(2)} cached (PGSIGHT_TX_ORIGIN default), ${capture.exact.toFixed(2)} exact (isolated; deeper, optimized callers cost more)`,
);
