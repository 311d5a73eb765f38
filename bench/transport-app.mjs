// One benchmark app process: logs BENCH_LINES records of 6 fields (nested objects) through one of
//   pgsight   — pgsight/transport (redaction + ECS in the worker) to Elasticsearch
//   baseline  — pino-elasticsearch, with @elastic/ecs-pino-format and pino's redact paths in the main thread
//   devnull   — plain pino to /dev/null (the main-thread cost floor)
// and prints { variant, lines, mainThreadUsPerCall, peakRssMb, workerHeapPeakMb, threads, deliveredPerSecond }.
// With BENCH_SINK (bench/bulk-sink.mjs), the run ends when the sink has every line, and `threads` is the CPU
// each kind of thread of this process spent meanwhile (µs, from /proc/self/task: the app thread, the
// transport's worker threads, and the rest: V8's GC and compiler threads, libuv's).
import { readdirSync, readFileSync } from 'node:fs';
import { ecsFormat } from '@elastic/ecs-pino-format';
import pino from 'pino';

const variant = process.env.BENCH_VARIANT;
const lines = Number(process.env.BENCH_LINES ?? 100000);
const node = process.env.BENCH_ES_URL;
const warmup = Number(process.env.BENCH_WARMUP_LINES ?? 1000);

const redactPaths = [
  'password',
  '*.password',
  'user.token',
  'req.headers.authorization',
  'req.headers.cookie',
];
let destination;
let options = {};
if (variant === 'pgsight') {
  destination = pino.transport({
    target: 'pgsight/transport',
    options: {
      outputs: [
        {
          type: 'elasticsearch',
          node,
          dataStream: 'logs-bench-pgsight',
          spoolDir: process.env.BENCH_SPOOL,
          flushBytes: 1048576,
          flushIntervalMs: 200,
        },
      ],
      statusIntervalMs: 0,
      summary: 'never',
    },
  });
} else if (variant === 'baseline') {
  destination = pino.transport({
    target: 'pino-elasticsearch',
    options: { node, index: 'bench-baseline', esVersion: 8, flushBytes: 1048576, flushInterval: 200 },
  });
  options = { ...ecsFormat({ convertErr: true }), redact: { paths: redactPaths, censor: '[REDACTED]' } };
} else {
  destination = pino.destination('/dev/null');
  options = {};
}
const logger = pino(options, destination);

const record = (i) => ({
  user: { id: i % 1000, name: 'jane', token: 'opaque' },
  order: { id: 100000 + i, total: 1234, currency: 'EUR' },
  region: 'eu-west-1',
  attempt: 1,
  tags: ['checkout', 'web'],
  latency: { ms: i % 97 },
});

let peakRss = 0;
const sample = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 50);
let workerHeapPeak = 0;
const worker = destination.worker;
const heapSample = worker
  ? setInterval(() => {
      worker.getHeapStatistics?.().then(
        (h) => {
          workerHeapPeak = Math.max(workerHeapPeak, h.used_heap_size);
        },
        () => {},
      );
    }, 100)
  : undefined;

const sink = process.env.BENCH_SINK;
const delivered = async () => (await (await fetch(`${sink}/__count`)).json()).docs;
const until = async (n) => {
  while ((await delivered()) < n) await new Promise((resolve) => setTimeout(resolve, 20));
};
const TICK_US = 1e6 / 100; // /proc's clock ticks (USER_HZ)
/** Node's and V8's own threads: GC and compiler workers, the platform's task runner, libuv's pool. */
const RUNTIME_THREADS = /^(V8Worker|DelayedTaskSche|SignalInspector|libuv-worker|node)$/;
function threadCpu() {
  const out = { app: 0, worker: 0, rest: 0 };
  for (const task of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${task}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const [utime, stime] = stat
        .slice(stat.lastIndexOf(')') + 2)
        .split(' ')
        .slice(11, 13)
        .map(Number);
      // pino names a transport's worker thread after its target (`pgsight/transpo`, `pino-elasticsea`).
      const kind = name === 'MainThread' ? 'app' : RUNTIME_THREADS.test(name) ? 'rest' : 'worker';
      out[kind] += (utime + stime) * TICK_US;
    } catch {
      // a thread that ended meanwhile
    }
  }
  return out;
}

// Warm-up (BENCH_WARMUP_LINES, yielding as the measured loop does), then measure the main thread's own CPU for the logging calls only.
for (let i = 0; i < warmup; i++) {
  logger.info(record(i), 'order placed');
  if (i % 2000 === 1999) await new Promise((resolve) => setImmediate(resolve));
}
if (sink) await until(warmup);
const threads0 = threadCpu();
const deliveredFrom = performance.now();
const t0 = process.threadCpuUsage();
const wall0 = Date.now();
for (let i = 0; i < lines; i++) {
  logger.info(record(i), 'order placed');
  // Yield now and then so the worker (and pino's buffer) keep up, as in a real service.
  if (i % 2000 === 1999) await new Promise((resolve) => setImmediate(resolve));
}
const t = process.threadCpuUsage(t0);
const logMs = Date.now() - wall0;
let threads;
let deliveredPerSecond;
if (sink) {
  await until(warmup + lines);
  deliveredPerSecond = lines / ((performance.now() - deliveredFrom) / 1000);
  const threads1 = threadCpu();
  threads = Object.fromEntries(Object.keys(threads1).map((k) => [k, threads1[k] - threads0[k]]));
}
clearInterval(sample);
if (heapSample) clearInterval(heapSample);
// The logger is used after the wait above: thread-stream holds its stream weakly once the worker is ready
// and terminates the worker when the stream is collected, so a logger nothing refers to any more while its
// last lines are on their way (a mark-compact during the wait) would lose them and hang the run.
await new Promise((resolve) => logger.flush(resolve));
console.log(
  JSON.stringify({
    variant,
    lines,
    logMs,
    mainThreadUsPerCall: (t.user + t.system) / lines,
    peakRssMb: peakRss / 2 ** 20,
    workerHeapPeakMb: workerHeapPeak / 2 ** 20,
    threads,
    deliveredPerSecond,
  }),
);
