// npm run bench:transport — pgsight/transport vs pino-elasticsearch + @elastic/ecs-pino-format + pino redact,
// on the same records, against the same local _bulk server (test/support/es-server.ts), in one process tree.
// Reports delivered lines/s end to end, main-thread CPU per log call (vs plain pino to /dev/null), and peak
// memory during a burst with Elasticsearch down. Targets (issue #3): throughput >= 2.0x pino-elasticsearch;
// main-thread cost within 5% of plain pino to /dev/null; worker RSS < 150 MB for 1M lines with ES down.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FakeElasticsearch } from '../test/support/es-server.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const lines = Number(process.env.BENCH_LINES ?? 200000);
const burst = Number(process.env.BENCH_BURST_LINES ?? 1000000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);

function app(variant, env) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['bench/transport-app.mjs'], {
      cwd: root,
      env: { ...process.env, BENCH_VARIANT: variant, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{"variant"'));
      if (code !== 0 || !line) reject(new Error(`${variant} exited ${code}`));
      else resolve({ ...JSON.parse(line), exitMs: Date.now() - started });
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function delivered(variant, es, index) {
  const before = es.count(index);
  const spool = mkdtempSync(join(tmpdir(), 'pgsight-bench-'));
  const started = Date.now();
  const result = await app(variant, { BENCH_ES_URL: es.url, BENCH_LINES: String(lines), BENCH_SPOOL: spool });
  // The app exits once its transport flushed; count what the server really stored.
  const stored = es.count(index) - before;
  const seconds = (Date.now() - started) / 1000;
  rmSync(spool, { recursive: true, force: true });
  return { ...result, stored, linesPerSecond: stored / seconds };
}

const es = new FakeElasticsearch();
// The sender is measured: the stand-in's mapping checks would take CPU from it on these two cores.
es.checkDocuments = false;
await es.start();
const samples = { pgsight: [], baseline: [], cpuPgsight: [], cpuDevnull: [] };
for (let r = 0; r < rounds; r++) {
  const p = await delivered('pgsight', es, 'logs-bench-pgsight');
  const b = await delivered('baseline', es, 'bench-baseline');
  if (p.stored !== lines + 1000)
    console.log(`warning: pgsight stored ${p.stored} of ${lines + 1000} (1000 warm-up lines included)`);
  samples.pgsight.push(p.linesPerSecond);
  samples.baseline.push(b.linesPerSecond);
  samples.cpuPgsight.push(p.mainThreadUsPerCall);
  const d = await app('devnull', { BENCH_LINES: String(lines) });
  samples.cpuDevnull.push(d.mainThreadUsPerCall);
  es.docs.clear();
}

// Burst with Elasticsearch down: everything goes to the disk spool; memory must stay bounded.
const down = new FakeElasticsearch();
down.checkDocuments = false;
await down.start();
const downUrl = down.url;
await down.stop();
const spool = mkdtempSync(join(tmpdir(), 'pgsight-bench-down-'));
const outage = await app('pgsight', {
  BENCH_ES_URL: downUrl,
  BENCH_LINES: String(burst),
  BENCH_SPOOL: spool,
});
rmSync(spool, { recursive: true, force: true });
await es.stop();

const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
const fmt = (n) => Math.round(n).toLocaleString('en-US');
console.log(`transport benchmark: ${lines} lines per run, ${rounds} rounds, node ${process.version}`);
console.log(
  `delivered lines/s   pgsight/transport ${fmt(m.pgsight)}   pino-elasticsearch+ecs ${fmt(m.baseline)}   ratio ${(m.pgsight / m.baseline).toFixed(2)} (target >= 2.0)`,
);
console.log(
  `main-thread CPU     pgsight ${m.cpuPgsight.toFixed(2)} µs/call   plain pino to /dev/null ${m.cpuDevnull.toFixed(2)} µs/call   ratio ${(m.cpuPgsight / m.cpuDevnull).toFixed(3)} (target <= 1.05)`,
);
console.log(
  `ES down, ${fmt(burst)} lines: process peak RSS ${outage.peakRssMb.toFixed(0)} MB (worker included; target: worker < 150 MB), worker heap peak ${outage.workerHeapPeakMb.toFixed(0)} MB`,
);
