// What users read: messages that say what happened, in the right number, and fields kept as logged.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { loadConfig } from '../src/config/env.js';
import { createTestSchema } from '../src/testing/index.js';
import { transaction } from '../src/transaction/transaction.js';
import { byAction, captureRecords } from './support/capture-logger.js';
import { fixture, runNode } from './support/run-node.js';

const db = await createTestSchema({ name: 'wording' });
afterAll(() => db.drop());

it('a transaction with no name of its own reads "transaction rolled back after 1 attempt"', async () => {
  const records = captureRecords();
  await expect(
    transaction(db.pool, async () => {
      throw new Error('no');
    }),
  ).rejects.toThrow('no');
  const [end] = byAction(records, 'db.transaction.end');
  expect(String(end?.message)).toMatch(/^transaction rolled back after 1 attempt in [\d.]+ ms$/);
});

it('LOG_LEVEL=bogus names the level used instead', () => {
  const said: string[] = [];
  loadConfig({ env: { LOG_LEVEL: 'bogus', NODE_ENV: 'production' }, onProblem: (p) => said.push(p.used) });
  expect(said).toEqual(['"info" (the production profile\'s level)']);
});

it('with PGSIGHT_SLOW_QUERY_MS=0 every query is recorded as a query, not a slow one', async () => {
  const run = await runNode(fixture('use-pg.mjs'), { env: { PGSIGHT_SLOW_QUERY_MS: '0' } });
  const recorded = byAction(run.records, 'db.query.slow');
  expect(recorded.length).toBeGreaterThan(0);
  for (const r of recorded) expect(String(r.message)).toMatch(/^query \([\d.]+ ms\): /);
});

it('both msg and message are kept; Infinity is kept as text; a cut list says how much was cut', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgsight-fields-'));
  const run = await runNode(fixture('log-hostile.mjs'), {
    args: [],
    env: {
      SCENARIO: 'fields',
      COUNT: '0',
      TRANSPORT_OPTIONS: JSON.stringify({
        statusIntervalMs: 0,
        outputs: [{ type: 'file', path: join(dir, 'f.ndjson') }],
      }),
    },
  });
  expect(run.code).toBe(0);
  const [first, big] = readFileSync(join(dir, 'f.ndjson'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, Record<string, unknown>>);
  expect(first?.message).toBe('the msg');
  expect(first?.pino?.message).toBe("the app's own message field");
  expect(big?.huge).toBe('Infinity');
  const list = big?.list as unknown as unknown[];
  expect(list).toHaveLength(1001);
  expect(list.at(-1)).toBe('[truncated: 59000 more]');
});
