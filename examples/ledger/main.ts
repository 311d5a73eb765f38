/**
 * The ledger service: `npm run ledger` (or `node --import pgsight/register examples/ledger/main.ts`).
 *
 *   start:    schema migration → publish what the outbox still holds → listen
 *   SIGTERM:  stop accepting → finish in-flight requests → close the pool → flush the logs → exit 0
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { createLogger, loadConfig, logError, requestLogging } from 'pgsight';
import { createLedger } from './app.ts';
import { ledgerConfig } from './config.ts';
import { migrateLegs, startRecovery } from './interledger.ts';
import { migrate } from './schema.ts';

const SHUTDOWN_TIMEOUT_MS = 10_000;

const config = ledgerConfig();
const elasticsearch = loadConfig({ onProblem: () => {} }).elasticsearchUrl;
const logger = createLogger({
  service: { name: 'ledger' },
  // LEDGER_LOG_FILE: ECS JSON into the file (and Elasticsearch when PGSIGHT_ELASTICSEARCH_URL is set);
  // otherwise the profile NODE_ENV selects (readable lines in development).
  ...(config.logFile
    ? {
        environment: 'production' as const,
        outputs: [
          { type: 'file' as const, path: config.logFile },
          ...(elasticsearch ? [{ type: 'elasticsearch' as const, node: elasticsearch }] : []),
        ],
      }
    : {}),
});

const pool = new pg.Pool({
  connectionString: config.databaseUrl,
  max: 10,
  application_name: `ledger-${config.schema}`,
  options: `-c search_path=${config.schema}`,
});
// A pooled connection that dies while idle (a restarted or terminated backend) is replaced on next use.
pool.on('error', (error) => logger.warn({ err: error }, 'an idle database connection was lost'));

try {
  await migrate(pool, config.schema);
} catch (error) {
  logError(error, {}, logger);
  process.stderr.write(
    `ledger: cannot prepare the database at ${config.databaseUrl.replace(/:[^:@/]*@/, ':***@')}: ${(error as Error).message}\n`,
  );
  await pool.end().catch(() => {});
  await new Promise((resolve) => logger.flush(resolve));
  process.exit(1);
}

/** Ledger B, in its own database (created when missing), for inter-ledger transfers; undefined if unusable. */
async function openSecondLedger(): Promise<pg.Pool | undefined> {
  const name = decodeURIComponent(new URL(config.secondDatabaseUrl).pathname.slice(1));
  try {
    const { rowCount } = await pool.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount)
      await pool.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`).catch((error: { code?: string }) => {
        if (error.code !== '42P04') throw error; // created meanwhile by another instance
      });
    const second = new pg.Pool({
      connectionString: config.secondDatabaseUrl,
      max: 10,
      application_name: `ledger-${config.schema}-b`,
      options: `-c search_path=${config.schema}`,
    });
    second.on('error', (error) => logger.warn({ err: error }, 'an idle connection to ledger B was lost'));
    await migrate(second, config.schema);
    await migrateLegs(second);
    await migrateLegs(pool);
    return second;
  } catch (error) {
    logger.warn({ err: error }, `ledger B (${name}) is not available: inter-ledger transfers answer 503`);
    return undefined;
  }
}
const second = await openSecondLedger();
const stopRecovery = second
  ? startRecovery(pool, second, (error) =>
      logger.warn({ err: error }, 'in-doubt recovery failed; retrying in 30 s'),
    )
  : () => {};

const ledger = createLedger(pool, config, logger, second);
const pending = await ledger.publishPending();
if (pending > 0)
  logger.info({ outbox: { published: pending } }, `published ${pending} outbox events left from before`);

const server = createServer(requestLogging({ logger, route: ledger.routeOf })(ledger.handle));
await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
const { port } = server.address() as AddressInfo;
ledger.setPort(port);
logger.info(
  { url: { full: `http://${config.host}:${port}` }, server: { port } },
  `ledger listening on http://${config.host}:${port}`,
);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down: finishing in-flight requests');
  const forced = setTimeout(() => server.closeAllConnections(), SHUTDOWN_TIMEOUT_MS).unref();
  await new Promise<void>((resolve) => {
    server.close(() => resolve()); // stops accepting; calls back once every connection has ended
    server.closeIdleConnections();
  });
  clearTimeout(forced);
  stopRecovery();
  await Promise.all([pool.end(), second?.end()]);
  logger.info('stopped');
  await new Promise((resolve) => logger.flush(resolve));
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
