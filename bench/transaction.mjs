// npm run bench:transaction — transaction() around 3 small statements vs the same BEGIN / statements / COMMIT
// written by hand on the same pool, in client-process CPU per transaction; each variant in its own process,
// interleaved over rounds, median reported. Target (issue #5): ratio <= 1.05 without the preload. Also
// reported: the ratio with the preload, and the cost of capturing the opening code location (watchdog).
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

const samples = { manual: [], pgsight: [], ratio: [], manualPre: [], pgsightPre: [], ratioPre: [] };
for (let r = 0; r < rounds; r++) {
  const plain = run(false);
  samples.manual.push(plain.manualUsPerTx);
  samples.pgsight.push(plain.pgsightUsPerTx);
  samples.ratio.push(plain.medianRatio);
  const pre = run(true);
  samples.manualPre.push(pre.manualUsPerTx);
  samples.pgsightPre.push(pre.pgsightUsPerTx);
  samples.ratioPre.push(pre.medianRatio);
}
const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));

// The watchdog's origin capture, in-process: Error.captureStackTrace on a plain object, never formatted.
const N = 200_000;
function capture() {
  const o = {};
  Error.captureStackTrace(o, capture);
  return o;
}
for (let i = 0; i < 10_000; i++) capture();
const c0 = process.cpuUsage();
for (let i = 0; i < N; i++) capture();
const c = process.cpuUsage(c0);
const captureUs = (c.user + c.system) / N;

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
console.log(
  `\nwatchdog origin capture: ${captureUs.toFixed(2)} µs per transaction (stack captured, formatted only if a record fires)`,
);
