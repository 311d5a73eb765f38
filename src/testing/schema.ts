/**
 * An isolated schema per test file, so test files can run in parallel against one database.
 */
import pg from 'pg';
import { processConfig } from '../config/env.js';
import { PgsightError } from '../errors.js';
import { type ConnectionTarget, connectionTarget } from '../pg/connection-string.js';
import { quoteIdentifier } from '../transaction/lock-rows.js';

export interface TestSchema {
  /** The schema's name: `t_<name>_<pid>_<time>`. */
  readonly schema: string;
  /** A pool whose connections have `search_path` set to the schema. */
  readonly pool: pg.Pool;
  /** Close the pool and drop the schema with everything in it. */
  drop(): Promise<void>;
}

export interface TestSchemaOptions {
  /** Part of the schema name, e.g. the test file's name. */
  name: string;
  /** @default `DATABASE_URL`, else libpq's `PG*` variables, else postgres://postgres@127.0.0.1:5432/test */
  databaseUrl?: string;
  /** Extra pool settings. */
  pool?: pg.PoolConfig;
}

/** 3D000: the database named in the connection does not exist. */
const INVALID_CATALOG_NAME = '3D000';

async function withClient<T>(target: ConnectionTarget, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(target.config);
  try {
    await client.connect();
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === INVALID_CATALOG_NAME)
      throw new PgsightError(
        'PGSIGHT_ERR_TESTING_DATABASE_MISSING',
        `pgsight/testing: ${(error as Error).message} on ${target.description}: create it (createdb), or point DATABASE_URL at one that exists`,
        { cause: error },
      );
    throw new PgsightError(
      'PGSIGHT_ERR_TESTING_UNREACHABLE',
      `pgsight/testing: PostgreSQL is not reachable at ${target.description} (${code ?? (error as Error).message}): start it, or set DATABASE_URL`,
      { cause: error },
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export async function createTestSchema(options: TestSchemaOptions): Promise<TestSchema> {
  const target = connectionTarget(processConfig(), options.databaseUrl);
  const suffix = `${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
  const schema = `t_${options.name}_${suffix}`
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 63);
  const quoted = quoteIdentifier(schema);
  await withClient(target, (c) => c.query(`CREATE SCHEMA ${quoted}`));
  const pool = new pg.Pool({ ...target.config, ...options.pool, options: `-c search_path=${schema}` });
  return {
    schema,
    pool,
    drop: async () => {
      await pool.end();
      await withClient(target, (c) => c.query(`DROP SCHEMA IF EXISTS ${quoted} CASCADE`));
    },
  };
}
