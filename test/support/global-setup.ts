// Fails the whole run loudly, naming the URL, when PostgreSQL cannot be reached; and makes sure the package
// is built, because the preload is tested as users run it: `node --import pgsight/register`.
import { existsSync } from 'node:fs';
import pg from 'pg';
import { databaseUrl } from './db.js';

export default async function setup(): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    throw new Error(
      `PostgreSQL is not reachable at ${databaseUrl}: ${String(error)}. Start it, or set DATABASE_URL.`,
    );
  } finally {
    await client.end().catch(() => {});
  }
  if (!existsSync(new URL('../../dist/src/register.js', import.meta.url))) {
    throw new Error('dist/ is missing: run `npm run build` first (npm test does it through pretest).');
  }
}
