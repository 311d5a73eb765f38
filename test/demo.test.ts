// `npm run demo`, shortened: it starts the ledger under the preload, loads it, stops it, and reports what a
// user checks. And when no PostgreSQL answers, it says how to get one.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { createTestSchema } from '../src/testing/index.js';
import { root, runNode } from './support/run-node.js';
import { dropSecondSchema, secondDatabaseUrl } from './support/second-database.js';

const demo = join(root, 'examples', 'ledger', 'demo.ts');

it('runs the ledger under load and prints the summary, with the balance invariant checked', async () => {
  const schema = await createTestSchema({ name: 'demo' });
  const logFile = join(mkdtempSync(join(tmpdir(), 'pgsight-demo-')), 'demo.ndjson');
  try {
    const run = await runNode(demo, {
      args: [],
      scriptArgs: ['--duration', '4', '--concurrency', '4', '--accounts', '6', '--log-file', logFile],
      env: { LEDGER_SCHEMA: schema.schema, LEDGER_SECOND_DATABASE_URL: await secondDatabaseUrl() },
      timeoutMs: 60_000,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/requests by status +.*201: [\d,]+/);
    expect(run.stdout).toMatch(/transfers applied +[1-9][\d,]*/);
    expect(run.stdout).toMatch(/slow queries flagged +[1-9]/); // the daily report
    expect(run.stdout).toMatch(/idle transactions +[1-9]/); // the receipts sent inside their transaction
    expect(run.stdout).toContain('total balance 60,000 before, 60,000 after: unchanged, no negative balance');
    expect(run.stdout).toContain('ledger exit           clean');
    const lines = readFileSync(logFile, 'utf8').trim().split('\n');
    expect(run.stdout).toContain(`written: ${lines.length.toLocaleString('en-US')} to ${logFile}`);
    // ECS, one document per line, the ledger's and pgsight's own records alike.
    for (const line of lines) expect(JSON.parse(line)).toHaveProperty('@timestamp');
    expect(lines.some((l) => l.includes('"logger":"pgsight"'))).toBe(true);
    // A first look: what the statuses mean, one record of each kind, and how to see them all.
    expect(run.stdout).toContain('422 insufficient funds');
    expect(run.stdout).toMatch(/a slow query \(db\.query\.slow\)\n.*\n.*\n +message +slow query \(/);
    expect(run.stdout).toMatch(
      /an idle transaction \(db\.transaction\.idle\)[\s\S]*db\.transaction\.name +receipt/,
    );
    expect(run.stdout).toMatch(/a request \(request\)[\s\S]*url\.path +\/transfers/);
    expect(run.stdout).toContain(`jq 'select(.event.action == "db.query.slow")' ${logFile}`);
  } finally {
    await schema.drop();
    await dropSecondSchema(schema.schema);
  }
});

it('with DATABASE_URL unset, starts an embedded PostgreSQL and deletes it afterwards', async () => {
  const logFile = join(mkdtempSync(join(tmpdir(), 'pgsight-demo-')), 'demo.ndjson');
  const run = await runNode(demo, {
    args: [],
    scriptArgs: ['--duration', '2', '--concurrency', '2', '--accounts', '4', '--log-file', logFile],
    env: { DATABASE_URL: undefined },
    timeoutMs: 60_000,
  });
  expect(run.code, run.stdout + run.stderr).toBe(0);
  const dataDir = /PostgreSQL runs in (\S+) \(deleted when the demo ends\)/.exec(run.stdout)?.[1];
  expect(dataDir).toBeDefined();
  expect(existsSync(dataDir as string)).toBe(false);
  expect(run.stdout).toContain('total balance 40,000 before, 40,000 after: unchanged');
});

it('without PostgreSQL it says exactly how to get one', async () => {
  const run = await runNode(demo, {
    args: [],
    scriptArgs: ['--duration', '1'],
    env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/test' },
  });
  expect(run.code).toBe(1);
  expect(run.stderr).toContain(
    'no PostgreSQL answers at postgres://postgres@127.0.0.1:1/test (ECONNREFUSED)',
  );
  expect(run.stderr).toContain('unset DATABASE_URL');
  expect(run.stderr).toContain('pg_ctlcluster 15 main start');
  expect(run.stderr).toContain('docker run');
  expect(run.stderr).toContain('DATABASE_URL=');
});
