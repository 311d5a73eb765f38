/**
 * `npm run demo`: builds pgsight if needed, starts the ledger under `node --import pgsight/register`, runs a
 * load against it (contended transfers, duplicate idempotency keys, bad requests, the slow report, receipts
 * sent from inside a transaction, one database backend terminated to show the retry path), stops it with
 * SIGTERM, and prints what happened, checked against the database.
 *
 *   npm run demo -- --duration 30 --concurrency 16 --accounts 20 --log-file logs/demo.ndjson
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { buildIfNeeded, root } from './build-if-needed.ts';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '30' },
    concurrency: { type: 'string', default: '16' },
    accounts: { type: 'string', default: '20' },
    'log-file': { type: 'string', default: 'logs/demo.ndjson' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  console.log(
    'Usage: npm run demo -- [--duration 30] [--concurrency 16] [--accounts 20] [--log-file logs/demo.ndjson]',
  );
  process.exit(0);
}
const durationS = Number(args.duration);
const concurrency = Number(args.concurrency);
const accountCount = Number(args.accounts);
for (const [name, value, min] of [
  ['--duration', durationS, 1],
  ['--concurrency', concurrency, 1],
  ['--accounts', accountCount, 2],
] as const)
  if (!Number.isInteger(value) || value < min) {
    console.error(`demo: ${name} must be a whole number of at least ${min}`);
    process.exit(2);
  }
const logFile = resolve(args['log-file'] as string);
const databaseUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const schema = process.env.LEDGER_SCHEMA || 'ledger';
const elasticsearch = process.env.PGSIGHT_ELASTICSEARCH_URL;
const OPENING_BALANCE = 10_000;

buildIfNeeded();

// ---- PostgreSQL --------------------------------------------------------------------------------------------

const safeUrl = databaseUrl.replace(/:[^:@/]*@/, ':***@');
const admin = new pg.Pool({ connectionString: databaseUrl, max: 2 });
try {
  await admin.query('SELECT 1');
} catch (error) {
  console.error(`demo: no PostgreSQL answers at ${safeUrl} (${(error as { code?: string }).code ?? (error as Error).message}).
Start one, then run npm run demo again:
  - installed here (Debian, Ubuntu):  sudo pg_ctlcluster 15 main start   (or: sudo systemctl start postgresql)
  - with Docker:                      docker run --rm -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:16
  - somewhere else:                   DATABASE_URL=postgres://user:password@host:5432/db npm run demo`);
  await admin.end();
  process.exit(1);
}

// ---- the ledger --------------------------------------------------------------------------------------------

const port = await new Promise<number>((done) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port } = probe.address() as { port: number };
    probe.close(() => done(port));
  });
});
mkdirSync(dirname(logFile), { recursive: true });
writeFileSync(logFile, '');
const url = `http://127.0.0.1:${port}`;
const ledger = spawn(
  process.execPath,
  ['--import', 'pgsight/register', join('examples', 'ledger', 'main.ts')],
  {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      NODE_ENV: 'production',
      OTEL_SERVICE_NAME: 'ledger',
      DATABASE_URL: databaseUrl,
      LEDGER_SCHEMA: schema,
      LEDGER_LOG_FILE: logFile,
      PGSIGHT_LOG_FILE: logFile,
      // The receipts are sent from inside their transaction, to show the idle-in-transaction record.
      LEDGER_CALL_INSIDE_TX: 'true',
      LEDGER_PARTNER_DELAY_MS: '800',
      PGSIGHT_TX_IDLE_MS: process.env.PGSIGHT_TX_IDLE_MS ?? '500',
    },
    stdio: ['ignore', 'inherit', 'pipe'],
  },
);
let ledgerStderr = '';
ledger.stderr.setEncoding('utf8').on('data', (chunk: string) => {
  ledgerStderr += chunk;
});
const ledgerExit = new Promise<number | null>((done) => ledger.on('exit', (code) => done(code)));

async function request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url + path, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

const startedAt = Date.now();
for (;;) {
  if (ledger.exitCode !== null) {
    console.error(`demo: the ledger exited (${ledger.exitCode}) before it was ready:\n${ledgerStderr}`);
    process.exit(1);
  }
  if (
    await request('GET', '/healthz')
      .then((r) => r.status === 200)
      .catch(() => false)
  )
    break;
  if (Date.now() - startedAt > 30_000) {
    console.error('demo: the ledger did not become healthy within 30 s');
    ledger.kill('SIGKILL');
    process.exit(1);
  }
  await new Promise((done) => setTimeout(done, 100));
}

// ---- the load ----------------------------------------------------------------------------------------------

const accounts: number[] = [];
for (let i = 0; i < accountCount; i++)
  accounts.push((await request('POST', '/accounts', { balance: OPENING_BALANCE })).body.id);
const totalBefore = accountCount * OPENING_BALANCE;

const statuses = new Map<number, number>();
const applied = new Set<number>();
let replayed = 0;
let failures = 0;
const count = (status: number) => statuses.set(status, (statuses.get(status) ?? 0) + 1);
const random = (n: number) => Math.floor(Math.random() * n);
/** Half the traffic goes to the first four accounts: contention on purpose. */
const pick = () =>
  accounts[Math.random() < 0.5 ? random(Math.min(4, accounts.length)) : random(accounts.length)] as number;
const pair = () => {
  const from = pick();
  let to = pick();
  while (to === from) to = accounts[random(accounts.length)] as number;
  return { from, to, amount: 1 + random(2_000) };
};
let sequence = 0;

async function oneStep(): Promise<void> {
  const dice = Math.random();
  if (dice < 0.08) {
    // a client retrying: the same key sent twice at once
    const transfer = pair();
    const key = `demo-${process.pid}-${sequence++}`;
    const answers = await Promise.all(
      [0, 1].map(() => request('POST', '/transfers', transfer, { 'idempotency-key': key })),
    );
    for (const a of answers) count(a.status);
    const ids = answers.filter((a) => a.status === 201).map((a) => a.body.id as number);
    for (const id of ids) applied.add(id);
    replayed += ids.length > 1 && ids[0] === ids[1] ? 1 : 0;
  } else if (dice < 0.11) {
    // bad requests: the same account twice, a negative amount, an unknown account
    const bad = [
      { from: accounts[0], to: accounts[0], amount: 5 },
      { from: accounts[0], to: accounts[1], amount: -5 },
      { from: accounts[0], to: 999_999_999, amount: 5 },
    ][random(3)];
    count((await request('POST', '/transfers', bad)).status);
  } else {
    const answer = await request('POST', '/transfers', pair());
    count(answer.status);
    if (answer.status === 201) applied.add(answer.body.id);
  }
}

const deadline = Date.now() + durationS * 1000;
const timeline = [
  {
    at: 0.2,
    what: 'the slow daily report',
    run: () => request('GET', '/reports/daily').then((r) => count(r.status)),
  },
  { at: 0.35, what: 'a backend terminated', run: terminateOneBackend },
  { at: 0.5, what: 'a receipt sent inside its transaction', run: sendReceipt },
  {
    at: 0.6,
    what: 'the slow daily report',
    run: () => request('GET', '/reports/daily').then((r) => count(r.status)),
  },
  { at: 0.8, what: 'a receipt sent inside its transaction', run: sendReceipt },
];

async function terminateOneBackend(): Promise<void> {
  await admin.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE application_name = $1 AND state = 'active' AND query NOT ILIKE 'COMMIT%' LIMIT 1`,
    [`ledger-${schema}`],
  );
}
async function sendReceipt(): Promise<void> {
  const id = [...applied][random(applied.size)];
  if (id !== undefined) count((await request('POST', `/transfers/${id}/receipt`)).status);
}

const isTty = process.stdout.isTTY === true;
let lastLine = 0;
function progress(final = false): void {
  const elapsed = Math.min(durationS, (Date.now() - (deadline - durationS * 1000)) / 1000);
  const done = Math.round((elapsed / durationS) * 30);
  const requests = [...statuses.values()].reduce((a, b) => a + b, 0);
  const line = `[${'#'.repeat(done)}${'.'.repeat(30 - done)}] ${elapsed.toFixed(0).padStart(3)}s/${durationS}s  ${applied.size.toLocaleString('en-US')} transfers  ${requests.toLocaleString('en-US')} requests`;
  if (isTty) process.stdout.write(`\r${line}${final ? '\n' : ''}`);
  else if (final || Date.now() - lastLine >= 5_000) {
    lastLine = Date.now();
    console.log(line);
  }
}

console.log(
  `demo: ledger at ${url}, ${accountCount} accounts, ${concurrency} clients, ${durationS} s; logs to ${logFile}`,
);
const ticker = setInterval(progress, 250);
const events = timeline.map(
  (event) =>
    new Promise<void>((done) =>
      setTimeout(
        () =>
          event.run().then(
            () => done(),
            () => done(),
          ),
        event.at * durationS * 1000,
      ),
    ),
);
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (Date.now() < deadline)
      await oneStep().catch(() => {
        failures++;
      });
  }),
);
await Promise.all(events);
clearInterval(ticker);
progress(true);

// ---- stop, then check ------------------------------------------------------------------------------------

ledger.kill('SIGTERM');
const exitCode = await ledgerExit;
const { rows } = await admin.query<{ total: string; negative: number }>(
  `SELECT coalesce(sum(balance), 0)::text AS total, count(*) FILTER (WHERE balance < 0)::int AS negative
     FROM ${schema}.accounts WHERE id = ANY($1)`,
  [accounts],
);
await admin.end();
const totalAfter = Number(rows[0]?.total);
const records = readFileSync(logFile, 'utf8')
  .split('\n')
  .filter((line) => line.length > 0);
const actions = new Map<string, number>();
for (const line of records) {
  const action = /"action":"([a-z._]+)"/.exec(line)?.[1];
  if (action) actions.set(action, (actions.get(action) ?? 0) + 1);
}
let shipped = 'not configured (set PGSIGHT_ELASTICSEARCH_URL to ship the logs too)';
if (elasticsearch) {
  const counted = await fetch(`${elasticsearch.replace(/\/$/, '')}/logs-pgsight.ledger-default/_count`)
    .then((r) => r.json() as Promise<{ count?: number }>)
    .catch(() => ({ count: undefined }));
  shipped =
    counted.count === undefined
      ? `could not count at ${elasticsearch}`
      : `${counted.count.toLocaleString('en-US')} documents in logs-pgsight.ledger-default`;
}
const trouble = /pgsight\/transport: received=.*/.exec(ledgerStderr)?.[0];

const n = (v: number | undefined) => (v ?? 0).toLocaleString('en-US');
const conserved = totalAfter === totalBefore && rows[0]?.negative === 0;
console.log(`
pgsight demo summary
  requests by status    ${[...statuses.entries()]
    .sort(([a], [b]) => a - b)
    .map(([status, c]) => `${status}: ${n(c)}`)
    .join('  ')}${failures ? `  (no answer: ${n(failures)})` : ''}
  transfers applied     ${n(applied.size)} (duplicate keys answered without applying twice: ${n(replayed)})
  retries seen          ${n(actions.get('db.transaction.retry'))} (db.transaction.retry records)
  slow queries flagged  ${n(actions.get('db.query.slow'))} (db.query.slow records)
  idle transactions     ${n(actions.get('db.transaction.idle'))} (db.transaction.idle records)
  log lines             written: ${n(records.length)} to ${logFile}; Elasticsearch: ${shipped}${trouble ? `\n                        ${trouble}` : ''}
  invariant             total balance ${n(totalBefore)} before, ${n(totalAfter)} after: ${conserved ? 'unchanged, no negative balance' : 'BROKEN'}
  ledger exit           ${exitCode === 0 ? 'clean (SIGTERM drained in-flight requests)' : `code ${exitCode}`}`);
process.exit(conserved && exitCode === 0 ? 0 : 1);
