/**
 * Where pgsight's own tooling (`pgsight/testing`, the demo, the benchmarks) connects, and how a connection
 * string is shown in a message: never with its password. Type imports only, so the demo (run from source
 * by Node's type stripping) can load it as it is.
 *
 * Order: an explicit URL > `DATABASE_URL` > libpq's `PG*` variables (node-postgres reads them itself when it
 * is given no connection string) > `postgres://postgres@127.0.0.1:5432/test`.
 */
import type pg from 'pg';
import type { Config } from '../config/env.js';

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

export interface ConnectionTarget {
  /** What to hand `new pg.Client()` / `new pg.Pool()`. */
  readonly config: pg.ClientConfig;
  /** Where that is, for messages: `user@host:port/database`, no password. */
  readonly description: string;
}

export function connectionTarget(
  config: Pick<Config, 'databaseUrl' | 'libpqVariables'>,
  url?: string,
): ConnectionTarget {
  const chosen = url ?? config.databaseUrl;
  if (chosen) return { config: { connectionString: chosen }, description: redactConnectionString(chosen) };
  if (config.libpqVariables.length > 0)
    return { config: {}, description: `the server libpq's ${config.libpqVariables.join(', ')} name` };
  return { config: { connectionString: DEFAULT_DATABASE_URL }, description: DEFAULT_DATABASE_URL };
}

/**
 * A connection string with its password replaced by `***`, in both of libpq's forms: a URL
 * (`postgres://user:secret@host/db`, `?password=secret`) and keyword/value (`host=x password=secret`).
 * https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING
 */
export function redactConnectionString(connectionString: string): string {
  const passwordParameter = /(^|[\s?&;])(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&;]*)/gi;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(connectionString)) {
    try {
      const url = new URL(connectionString);
      if (url.password) url.password = '***';
      if (url.searchParams.has('password')) url.searchParams.set('password', '***');
      return url.toString();
    } catch {
      // Not a URL Node can parse: fall through to the pattern, which also covers `user:secret@`.
      return connectionString
        .replace(/(\/\/[^/:@\s]*:)[^@\s]*@/, '$1***@')
        .replace(passwordParameter, '$1$2***');
    }
  }
  return connectionString.replace(passwordParameter, '$1$2***');
}
