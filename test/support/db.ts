// Where the tests connect: DATABASE_URL, which global-setup.ts sets to the embedded server it starts when the
// run was given none. Per-file schemas come from pgsight/testing's createTestSchema (src/testing/schema.ts).
import { loadConfig } from '../../src/config/env.js';
import { connectionTarget, redactConnectionString } from '../../src/pg/connection-string.js';

const target = connectionTarget(loadConfig({ onProblem: () => {} }));
export const databaseUrl: string = target.config.connectionString ?? '';
if (!databaseUrl)
  throw new Error(
    `the tests need DATABASE_URL (set by test/support/global-setup.ts); got ${target.description}`,
  );

/** A connection string fit for a message: its password replaced. */
export const redactUrl = redactConnectionString;

/** The server's port, as pgsight's records report it (`server.port`). */
export const databasePort = Number(new URL(databaseUrl).port || 5432);
