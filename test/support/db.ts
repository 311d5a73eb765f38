import pg from 'pg';

export const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A fresh schema for one test file, so files can run in parallel; dropped by the returned `drop`. */
export async function createTestSchema(
  name: string,
): Promise<{ schema: string; pool: pg.Pool; drop: () => Promise<void> }> {
  const schema = `t_${name}_${process.pid}_${Date.now().toString(36)}`
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_');
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${schema}"`);
  await admin.end();
  const pool = new pg.Pool({ connectionString: databaseUrl, options: `-c search_path="${schema}"` });
  return {
    schema,
    pool,
    drop: async () => {
      await pool.end();
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      await c.query(`DROP SCHEMA "${schema}" CASCADE`);
      await c.end();
    },
  };
}
