// The embedded PostgreSQL the suite and the demo start when DATABASE_URL is unset (scripts/): a real server,
// gone with its data when its owner ends, even by SIGKILL.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.js';
import { fixture, runNode } from './support/run-node.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

it('serves a real PostgreSQL with prepared transactions, and deletes its data when stopped', async () => {
  const db = await startEmbeddedPostgres();
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const { rows } = await client.query('SHOW max_prepared_transactions');
  await client.end();
  expect(Number(rows[0].max_prepared_transactions)).toBeGreaterThan(0);
  expect(existsSync(db.dataDir as string)).toBe(true);
  await db.stop();
  expect(existsSync(dirname(db.dataDir as string))).toBe(false);
});

it('a cluster whose owner was killed with SIGKILL is stopped and deleted by the next start', async () => {
  let dataDir = '';
  const owner = await runNode(fixture('embedded-owner.ts'), {
    args: [],
    timeoutMs: 30_000,
    onLine: (line, child) => {
      if (!line.startsWith('READY ')) return;
      dataDir = line.slice('READY '.length);
      child.kill('SIGKILL');
    },
  });
  expect(owner.signal).toBe('SIGKILL');
  // Left behind: SIGKILL runs no handler.
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  expect(alive(postmaster)).toBe(true);
  const next = await startEmbeddedPostgres();
  await next.stop();
  expect(existsSync(dirname(dataDir))).toBe(false);
  expect(alive(postmaster)).toBe(false);
});
