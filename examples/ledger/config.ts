/**
 * The ledger's settings, from the environment (pgsight's own PGSIGHT_* variables are read by pgsight).
 *
 * | variable                | default                                      |
 * |-------------------------|----------------------------------------------|
 * | PORT                    | 3000 (0 picks a free port)                   |
 * | HOST                    | 127.0.0.1                                    |
 * | DATABASE_URL            | postgres://postgres@127.0.0.1:5432/test      |
 * | LEDGER_SCHEMA           | ledger                                       |
 * | LEDGER_LOG_FILE         | unset: stdout                                |
 * | LEDGER_CALL_INSIDE_TX   | false: the receipt call is made outside the transaction |
 * | LEDGER_PARTNER_URL      | this service's own /partner/receipts         |
 * | LEDGER_PARTNER_DELAY_MS | 1500 (the simulated partner's answer time)   |
 * | LEDGER_SECOND_DATABASE_URL | DATABASE_URL with `_b` added to the database name (ledger B, inter-ledger transfers) |
 */
export interface LedgerConfig {
  port: number;
  host: string;
  databaseUrl: string;
  schema: string;
  logFile: string | undefined;
  callInsideTransaction: boolean;
  partnerUrl: string | undefined;
  partnerDelayMs: number;
  secondDatabaseUrl: string;
}

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** The same server, the database name with `suffix` added. */
function withSuffix(url: string, suffix: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${decodeURIComponent(parsed.pathname.slice(1) || 'postgres')}${suffix}`;
  return parsed.toString();
}

function integer(name: string, fallback: number, env: NodeJS.ProcessEnv): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0)
    throw new Error(`${name}=${JSON.stringify(raw)} is not a whole number`);
  return value;
}

export function ledgerConfig(env: NodeJS.ProcessEnv = process.env): LedgerConfig {
  const schema = env.LEDGER_SCHEMA || 'ledger';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema))
    throw new Error(`LEDGER_SCHEMA=${JSON.stringify(schema)} must be a lower-case SQL identifier`);
  return {
    port: integer('PORT', 3000, env),
    host: env.HOST || '127.0.0.1',
    databaseUrl: env.DATABASE_URL || DEFAULT_DATABASE_URL,
    schema,
    logFile: env.LEDGER_LOG_FILE || undefined,
    callInsideTransaction: env.LEDGER_CALL_INSIDE_TX === 'true' || env.LEDGER_CALL_INSIDE_TX === '1',
    partnerUrl: env.LEDGER_PARTNER_URL || undefined,
    partnerDelayMs: integer('LEDGER_PARTNER_DELAY_MS', 1500, env),
    secondDatabaseUrl:
      env.LEDGER_SECOND_DATABASE_URL || withSuffix(env.DATABASE_URL || DEFAULT_DATABASE_URL, '_b'),
  };
}
