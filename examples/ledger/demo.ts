/**
 * `npm run demo`: builds pgsight if needed, starts the ledger under `node --import pgsight/register`, runs a
 * load against it (contended transfers, duplicate idempotency keys, bad requests, the slow report, receipts
 * sent from inside a transaction, one database backend terminated to show the retry path), stops it with
 * SIGTERM, and prints what happened, checked against the database, with one record of each kind.
 *
 * With DATABASE_URL unset it starts an embedded PostgreSQL of its own (scripts/embedded-postgres.ts) in the
 * system's temporary directory, and deletes it when it ends.
 *
 *   npm run demo -- --duration 30 --concurrency 16 --accounts 20 --log-file logs/demo.ndjson
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { databaseForDevelopment } from '../../scripts/embedded-postgres.ts';
import { redactConnectionString } from '../../src/pg/connection-string.ts';
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
const schema = process.env.LEDGER_SCHEMA || 'ledger';
const elasticsearch = process.env.PGSIGHT_ELASTICSEARCH_URL;
const OPENING_BALANCE = 10_000;

buildIfNeeded();

// ---- PostgreSQL --------------------------------------------------------------------------------------------

if (!process.env.DATABASE_URL) console.log('demo: DATABASE_URL is not set; starting an embedded PostgreSQL');
const database = await databaseForDevelopment({ databases: ['test', 'test_b'] }).catch((error: Error) => {
  console.error(`demo: ${error.message}
Or point the demo at a PostgreSQL of your own: DATABASE_URL=postgres://user:password@host:5432/db npm run demo`);
  process.exit(1);
});
const databaseUrl = database.url;
/** Ends the demo: the embedded server (if any) is stopped and its data deleted first. */
async function finish(code: number): Promise<never> {
  await database.stop();
  process.exit(code);
}
process.once('SIGINT', () => void finish(130));
if (database.embedded)
  console.log(`demo: PostgreSQL runs in ${database.dataDir} (deleted when the demo ends)`);

const safeUrl = redactConnectionString(databaseUrl);
const admin = new pg.Pool({ connectionString: databaseUrl, max: 2 });
// pool.end() resolves once its clients are taken out, before their sockets close: an embedded server stopped
// right after can still terminate one (57P01), which pg-pool reports on the pool. Expected then; said otherwise.
admin.on('error', (error: Error & { code?: string }) => {
  if (error.code !== '57P01') console.error(`demo: a database connection was lost: ${error.message}`);
});
try {
  await admin.query('SELECT 1');
} catch (error) {
  console.error(`demo: no PostgreSQL answers at ${safeUrl} (${(error as { code?: string }).code ?? (error as Error).message}).
Start it, or let the demo start its own:
  - unset DATABASE_URL:               npm run demo   (an embedded PostgreSQL, deleted afterwards)
  - installed here (Debian, Ubuntu):  sudo pg_ctlcluster 15 main start   (or: sudo systemctl start postgresql)
  - with Docker:                      docker run --rm -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:16
  - somewhere else:                   DATABASE_URL=postgres://user:password@host:5432/db npm run demo`);
  await admin.end();
  await finish(1);
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
  // process.execArgv: the Node flags the demo runs with (on Node 22.15, the one that strips TypeScript).
  [...process.execArgv, '--import', 'pgsight/register', join('examples', 'ledger', 'main.ts')],
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
    await finish(1);
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
    await finish(1);
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
    // Only the ledger's own connections (this database, this application name), and a transfer's statement,
    // not the slow report's: a transfer is retried, a report is not.
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = $1 AND state = 'active'
        AND query NOT ILIKE 'COMMIT%' AND query NOT ILIKE '%pg_sleep%' LIMIT 1`,
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
/** What the summary shows of each kind of record: the kind, a title, the fields after the message. */
type Sample = readonly [kind: string, title: string, paths: readonly string[]];
const SAMPLES: readonly Sample[] = [
  [
    'db.query.slow',
    'a slow query',
    ['event.duration', 'db.query.fingerprint', 'db.query.text', 'http.request.id'],
  ],
  [
    'db.transaction.idle',
    'an idle transaction',
    ['db.transaction.name', 'db.transaction.idle_ms', 'log.origin.file.name', 'log.origin.file.line'],
  ],
  [
    'db.transaction.retry',
    'a retried transaction',
    [
      'db.transaction.name',
      'db.transaction.attempt',
      'db.response.status_code',
      'db.transaction.retry_delay_ms',
    ],
  ],
  [
    'request',
    'a request',
    ['http.request.method', 'url.path', 'http.response.status_code', 'event.duration', 'http.request.id'],
  ],
];

/** The first record of each kind the summary shows. */
const firsts = new Map<string, Record<string, unknown>>();
for (const line of records) {
  const action = /"action":"([a-z._]+)"/.exec(line)?.[1];
  if (action) actions.set(action, (actions.get(action) ?? 0) + 1);
  const kind = action ?? (line.includes('"route":"/transfers"') ? 'request' : undefined);
  if (kind && !firsts.has(kind)) firsts.set(kind, JSON.parse(line));
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
  ledger exit           ${exitCode === 0 ? 'clean (SIGTERM drained in-flight requests)' : `code ${exitCode}`}

  what the statuses mean: 201 an account opened or a transfer applied; 200 a read, or a duplicate
  idempotency key answered with the first transfer; 400 and 404 bad requests the load sends on purpose
  (the same account twice, a negative amount, an unknown account); 422 insufficient funds: random amounts
  drain some accounts, and the ledger refuses to overdraw them, as it should.${statuses.has(500) ? '\n  500 a request that failed: see the error records in the log file.' : ''}`);

console.log('\none record of each kind, cut to the fields that matter:');
for (const [kind, title, paths] of SAMPLES) {
  const record = firsts.get(kind);
  if (!record) continue;
  console.log(`\n  ${title} (${kind})`);
  for (const path of ['@timestamp', 'log.level', 'message', ...paths, 'trace.id']) {
    const value = fieldAt(record, path);
    if (value !== undefined) console.log(`    ${path.padEnd(30)} ${clip(value)}`);
  }
}
console.log(`
all of them: jq 'select(.event.action == "db.query.slow")' ${logFile}
  (any event.action above, or drop the filter), or in Kibana: npx pgsight setup, then the pgsight dashboards`);
await finish(conserved && exitCode === 0 ? 0 : 1);

/** A record's field by its ECS path, whether stored nested or as a dotted top-level key. */
function fieldAt(record: Record<string, unknown>, path: string): unknown {
  if (path in record) return record[path];
  let value: unknown = record;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function clip(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
}
