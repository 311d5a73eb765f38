// npm run bench:ledger — the reference service's throughput with and without the preload: transfers per
// second at 16 concurrent clients (keep-alive HTTP, contended accounts), and the ledger process's CPU time per
// transfer. Each round starts a fresh ledger process (`node examples/ledger/main.ts`, or the same with
// `--import pgsight/register`), warms it up, then measures; variants alternate, and medians are reported.
// Target (issue #7): without / with <= 1.10.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const root = fileURLToPath(new URL('..', import.meta.url));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const WARMUP_SECONDS = 2;
const CLIENTS = 16;
const ACCOUNTS = 20;
const databaseUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const schema = `bench_ledger_${process.pid}`;

const freePort = () =>
  new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });

/** user + system CPU seconds of a process, from /proc. */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

async function post(url, path, body) {
  const response = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

const VARIANTS = {
  without: [],
  with: ['--import', 'pgsight/register'],
};

async function round(variant) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [...VARIANTS[variant], 'examples/ledger/main.ts'], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      NODE_ENV: 'production',
      LEDGER_SCHEMA: schema,
      LEDGER_LOG_FILE: join(tmpdir(), `pgsight-bench-ledger-${process.pid}.ndjson`),
      PGSIGHT_LOG_FILE: join(tmpdir(), `pgsight-bench-ledger-${process.pid}.ndjson`),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  for (let i = 0; ; i++) {
    const ok = await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (i > 300) throw new Error('the ledger did not start');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const accounts = [];
  for (let i = 0; i < ACCOUNTS; i++)
    accounts.push((await post(url, '/accounts', { balance: 1_000_000_000 })).body.id);
  const pick = () => accounts[Math.floor(Math.random() * accounts.length)];
  let measuring = false;
  let transfers = 0;
  const stopAt = Date.now() + (WARMUP_SECONDS + SECONDS) * 1000;
  let cpuStart = 0;
  let startedAt = 0;
  setTimeout(() => {
    measuring = true;
    transfers = 0;
    cpuStart = cpuSeconds(child.pid);
    startedAt = performance.now();
  }, WARMUP_SECONDS * 1000);
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (Date.now() < stopAt) {
        const from = pick();
        let to = pick();
        if (to === from) to = accounts[(accounts.indexOf(from) + 1) % accounts.length];
        const answer = await post(url, '/transfers', {
          from,
          to,
          amount: 1 + Math.floor(Math.random() * 100),
        });
        if (answer.status === 201 && measuring) transfers++;
      }
    }),
  );
  const seconds = (performance.now() - startedAt) / 1000;
  const cpu = cpuSeconds(child.pid) - cpuStart;
  child.kill('SIGTERM');
  await exited;
  return { perSecond: transfers / seconds, cpuUsPerTransfer: (cpu / transfers) * 1e6 };
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

const admin = new pg.Pool({ connectionString: databaseUrl, max: 1 });
const results = { without: [], with: [] };
try {
  for (let r = 0; r < ROUNDS; r++) {
    // Rotate which variant goes first, so drift on the machine does not favour one.
    const names = Object.keys(VARIANTS);
    const order = names.map((_, i) => names[(i + r) % names.length]);
    for (const variant of order) {
      const result = await round(variant);
      results[variant].push(result);
      console.error(
        `round ${r + 1}/${ROUNDS} ${variant.padEnd(9)}: ${result.perSecond.toFixed(0)} transfers/s, ${result.cpuUsPerTransfer.toFixed(0)} µs CPU/transfer`,
      );
    }
  }
} finally {
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
}

const summary = (variant) => ({
  tps: median(results[variant].map((r) => r.perSecond)),
  cpu: median(results[variant].map((r) => r.cpuUsPerTransfer)),
});
const without = summary('without');
const withPreload = summary('with');
const ratio = without.tps / withPreload.tps;
console.log(`
ledger: ${CLIENTS} clients, ${ACCOUNTS} accounts, ${ROUNDS} rounds of ${SECONDS} s per variant (medians)

| variant | transfers/s | ledger CPU µs/transfer |
|---|---|---|
| without the preload | ${without.tps.toFixed(0)} | ${without.cpu.toFixed(0)} |
| with \`--import pgsight/register\` | ${withPreload.tps.toFixed(0)} | ${withPreload.cpu.toFixed(0)} |
| **overhead ratio** (without / with, transfers/s), target <= 1.10 | **${ratio.toFixed(3)}** (${ratio <= 1.1 ? 'met' : 'not met'}) | ${(withPreload.cpu / without.cpu).toFixed(3)} (CPU, with / without) |`);
