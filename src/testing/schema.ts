/**
 * An isolated schema per test file, so test files can run in parallel against one database.
 */
import pg from 'pg';
import { loadConfig } from '../config.js';
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
  /** @default DATABASE_URL, or postgres://postgres@127.0.0.1:5432/test */
  databaseUrl?: string;
  /** Extra pool settings. */
  pool?: pg.PoolConfig;
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(`pgsight/testing: PostgreSQL is not reachable at ${url}: ${String(error)}`, {
      cause: error,
    });
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export async function createTestSchema(options: TestSchemaOptions): Promise<TestSchema> {
  const url = options.databaseUrl ?? loadConfig({ onProblem: () => {} }).databaseUrl;
  const suffix = `${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
  const schema = `t_${options.name}_${suffix}`
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 63);
  const quoted = quoteIdentifier(schema);
  await withClient(url, (c) => c.query(`CREATE SCHEMA ${quoted}`));
  const pool = new pg.Pool({ connectionString: url, ...options.pool, options: `-c search_path=${schema}` });
  return {
    schema,
    pool,
    drop: async () => {
      await pool.end();
      await withClient(url, (c) => c.query(`DROP SCHEMA IF EXISTS ${quoted} CASCADE`));
    },
  };
}
