// npm run bench:transaction — transaction() around 3 small statements vs the same BEGIN / statements / COMMIT
// written by hand on the same pool, in client-process CPU per transaction; each variant in its own process,
// interleaved over rounds, median reported. Target (issue #5): ratio <= 1.05 without the preload. Also
// reported: the ratio with the preload, the floor (a bare wrapper with only an AsyncLocalStorage context, measured
// in the same blocks), and the cost of capturing the opening code location (watchdog).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const rounds = Number(process.env.BENCH_ROUNDS ?? 7);

function run(preload) {
  const args = preload
    ? ['--import', 'pgsight/register', 'bench/transaction-workload.mjs']
    : ['bench/transaction-workload.mjs'];
  const child = spawnSync(process.execPath, args, {
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
  const plain = run(false);
  samples.manual.push(plain.manualUsPerTx);
  samples.pgsight.push(plain.pgsightUsPerTx);
  samples.ratio.push(plain.medianRatio);
  samples.bare.push(plain.bareUsPerTx);
  samples.ratioBare.push(plain.bareMedianRatio);
  const pre = run(true);
  samples.manualPre.push(pre.manualUsPerTx);
  samples.pgsightPre.push(pre.pgsightUsPerTx);
  samples.ratioPre.push(pre.medianRatio);
}
const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));

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
  `transaction benchmark: 4 workers, pool of 4; ${rounds} processes, each running 40 adjacent pairs of 200-transaction blocks; node ${process.version}`,
);
console.log('\nCPU µs per transaction (BEGIN + 3 SELECTs + COMMIT, median)');
console.log(`                      hand-written   transaction()   ratio   target`);
// The ratio: median over processes of each process's median pair ratio (both modes measured side by side).
const row = (label, a, b, ratio, target) =>
  console.log(
    `${label.padEnd(22)}${a.toFixed(1).padStart(12)}${b.toFixed(1).padStart(16)}${ratio.toFixed(3).padStart(8)}   ${
      target ? `<= ${target} ${ratio <= target ? 'met' : 'NOT met'}` : '(reported)'
    }`,
  );
row('without the preload', m.manual, m.pgsight, m.ratio, 1.05);
row('with the preload', m.manualPre, m.pgsightPre, m.ratioPre, null);
// The floor: BEGIN, the function in an AsyncLocalStorage context, COMMIT, and no feature (bench/transaction-workload.mjs).
row('bare wrapper (floor)', m.manual, m.bare, m.ratioBare, null);
console.log(
  `\nwatchdog origin capture, µs per transaction: ${capture.cached.toFixed(2)} cached (PGSIGHT_TX_ORIGIN default), ${capture.exact.toFixed(2)} exact (isolated; deeper, optimized callers cost more)`,
);
