// The suite's PostgreSQL: the server DATABASE_URL names, or (unset) an embedded one started here, stopped and
// deleted when the run ends. Test files and the children they spawn read DATABASE_URL, which this sets before
// vitest starts its workers. Fails the whole run loudly, naming the server, when it cannot be reached; and
// makes sure the package is built, because the preload is tested as users run it: `node --import
// pgsight/register`.
import { existsSync } from 'node:fs';
import pg from 'pg';
import { databaseForDevelopment } from '../../scripts/embedded-postgres.js';
import { redactConnectionString as redactUrl } from '../../src/pg/connection-string.js';

export default async function setup(): Promise<() => Promise<void>> {
  if (!existsSync(new URL('../../dist/src/preload/register.js', import.meta.url))) {
    throw new Error('dist/ is missing: run `npm run build` first (npm test does it through pretest).');
  }
  const database = await databaseForDevelopment();
  process.env.DATABASE_URL = database.url;
  const client = new pg.Client({ connectionString: database.url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    const { rows } = await client.query('SHOW server_version');
    const where = database.embedded ? `embedded, in ${database.dataDir}` : 'DATABASE_URL';
    process.stdout.write(`PostgreSQL ${rows[0].server_version} at ${redactUrl(database.url)} (${where})\n`);
  } catch (error) {
    await database.stop();
    throw new Error(
      `PostgreSQL is not reachable at ${redactUrl(database.url)}: ${String(error)}. Start it, or set DATABASE_URL.`,
    );
  } finally {
    await client.end().catch(() => {});
  }
  return () => database.stop();
}
