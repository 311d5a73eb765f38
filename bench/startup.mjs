// `npm run bench:startup`: what `node --import pgsight/register` adds to a process's start, against bare Node
// and against the stock OpenTelemetry SDK with instrumentation-pg alone (bench/baselines/
// stock-otel-register.mjs), in the same run, the variants alternated. Each run is `node [preload] -e <exit>`:
// wall time from spawn to exit, and the child's max RSS (process.resourceUsage().maxRSS at exit). Medians.
// Targets: pgsight adds at most 150 ms and at most 0.4x what the stock SDK adds, and at most 35 MB.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const runs = Number(process.env.BENCH_RUNS ?? 21);
const root = fileURLToPath(new URL('..', import.meta.url));
const exit = "process.on('exit',()=>process.stdout.write(String(process.resourceUsage().maxRSS)))";
const variants = [
  { name: 'bare node', args: [] },
  { name: 'pgsight/register', args: ['--import', 'pgsight/register'] },
  { name: 'stock SDK + instrumentation-pg', args: ['--import', './bench/baselines/stock-otel-register.mjs'] },
];
// Nothing exported, as the preload's default; the stock SDK then builds its default OTLP exporter.
const env = { ...process.env };
for (const key of Object.keys(env))
  if (key.startsWith('OTEL_') || key.startsWith('PGSIGHT_')) delete env[key];
delete env.NODE_OPTIONS;

const samples = variants.map(() => ({ ms: [], rssKb: [] }));
for (let i = 0; i < runs + 1; i++) {
  for (const [v, variant] of variants.entries()) {
    const started = process.hrtime.bigint();
    const child = spawnSync(process.execPath, [...variant.args, '-e', exit], {
      cwd: root,
      env,
      encoding: 'utf8',
    });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (child.status !== 0) throw new Error(`${variant.name} failed: ${child.stderr}`);
    if (i === 0) continue; // warm-up: the file system cache
    samples[v].ms.push(ms);
    samples[v].rssKb.push(Number(child.stdout));
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const [bare, pgsight, stock] = samples.map((s) => ({ ms: median(s.ms), mb: median(s.rssKb) / 1024 }));
console.log(`startup benchmark: ${runs} runs per variant, alternated, node ${process.version}\n`);
console.log('variant                              wall ms   max RSS MB');
for (const [v, m] of [bare, pgsight, stock].entries())
  console.log(
    `${variants[v].name.padEnd(36)} ${m.ms.toFixed(0).padStart(7)}   ${m.mb.toFixed(1).padStart(10)}`,
  );
const added = pgsight.ms - bare.ms;
const stockAdded = stock.ms - bare.ms;
const rss = pgsight.mb - bare.mb;
const verdict = (ok) => (ok ? 'met' : 'NOT met');
console.log('\nadded over bare node                  value    target');
console.log(
  `pgsight wall                        ${added.toFixed(0).padStart(5)} ms   <= 150 ms ${verdict(added <= 150)}`,
);
console.log(
  `pgsight / stock SDK (wall added)    ${(added / stockAdded).toFixed(2).padStart(5)}      <= 0.40   ${verdict(added / stockAdded <= 0.4)}`,
);
console.log(
  `pgsight max RSS                     ${rss.toFixed(1).padStart(5)} MB   <= 35 MB  ${verdict(rss <= 35)}`,
);
console.log(`stock SDK wall (reference)          ${stockAdded.toFixed(0).padStart(5)} ms`);
