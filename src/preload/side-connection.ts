/**
 * pgsight's own connection to a server the app uses, for forensics (forensics.ts) and plans (explain.ts):
 * one per connection target (host, port, database, user, startup options), opened lazily with the app's
 * own settings (so names resolve as the app's do), never taken from the app's pool, closed after a minute
 * unused, and never keeping the process alive (its socket is unref'd).
 *
 *   app client ──(its pg Client class, its connection parameters)──▶ new Client({... application_name:
 *   'pgsight forensics', statement_timeout }) ──▶ queries through pg's own query function (the class's
 *   prototype carries pgsight's wrapper: the side connection's statements are neither timed nor counted)
 *
 * A target whose connection failed is not tried again for a while: the caller counts the skip.
 */
import { context, ROOT_CONTEXT } from '@opentelemetry/api';
import { PGSIGHT_WRAPPED } from './query-patch.js';

/** How long a statement of pgsight's may run on the server (ms): a sample or a plan is quick, or useless. */
export const SIDE_STATEMENT_TIMEOUT_MS = 2000;
const CONNECT_TIMEOUT_MS = 2000;
/** A target that refused a connection is left alone this long. */
const RETRY_AFTER_MS = 10_000;
const IDLE_CLOSE_MS = 60_000;
/** Distinct targets with a side connection at once; beyond, forensics is skipped (counted). */
const MAX_TARGETS = 8;

type Query = (
  this: unknown,
  config: unknown,
  values?: unknown,
) => Promise<{ rows: Record<string, unknown>[] }>;

interface PgClientLike {
  processID?: number;
  password?: unknown;
  connectionParameters?: {
    user?: string;
    database?: string;
    host?: string;
    port?: number;
    password?: unknown;
    ssl?: unknown;
    options?: string;
  };
}

interface SideClient {
  connect(): Promise<void>;
  end(): Promise<void>;
  on(event: string, listener: (...args: unknown[]) => void): void;
  connection?: { stream?: { unref?: () => void; ref?: () => void } };
}

export interface SideConnection {
  /** A statement on the side connection, with pg's own query function (extended protocol when `values`). */
  query(text: string, values?: unknown[], extended?: boolean): Promise<Record<string, unknown>[]>;
  /** `server_version_num`, e.g. 150004. */
  readonly serverVersion: number;
  /**
   * Run `fn` alone on the connection: a sample never lands inside a plan's transaction (where
   * pg_stat_activity would be the transaction's first snapshot).
   */
  exclusive<T>(fn: (side: SideConnection) => Promise<T>): Promise<T>;
}

interface Target {
  opening: Promise<SideConnection | undefined> | undefined;
  client: SideClient | undefined;
  failedAt: number;
  idle: NodeJS.Timeout | undefined;
}

const targets = new Map<string, Target>();

/** The pg Client class whose prototype carries pgsight's wrapper, and pg's own query function under it. */
function pgClassOf(client: object): { Client: new (config: object) => SideClient; query: Query } | undefined {
  for (let proto = Object.getPrototypeOf(client); proto; proto = Object.getPrototypeOf(proto)) {
    const own = Object.getOwnPropertyDescriptor(proto, 'query')?.value as
      | (Query & { [PGSIGHT_WRAPPED]?: boolean; __original?: Query })
      | undefined;
    if (
      own?.[PGSIGHT_WRAPPED] &&
      typeof own.__original === 'function' &&
      typeof proto.constructor === 'function'
    )
      return { Client: proto.constructor, query: own.__original };
  }
  return undefined;
}

function keyOf(params: NonNullable<PgClientLike['connectionParameters']>): string {
  return `${params.user}@${params.host}:${params.port}/${params.database}?${params.options ?? ''}`;
}

/**
 * The side connection for the server and database `client` talks to, opened on first use; undefined when it
 * cannot be had (the target refused it recently, too many targets, a client pgsight cannot copy).
 */
export function sideConnectionFor(client: object): Promise<SideConnection | undefined> {
  const params = (client as PgClientLike).connectionParameters;
  // pg's JavaScript client only: a native (libpq) client has no socket pgsight could unref, and no pid.
  if ((client as { connection?: unknown }).connection === undefined) return Promise.resolve(undefined);
  const pgClass = params && pgClassOf(client);
  if (!params || !pgClass) return Promise.resolve(undefined);
  const key = keyOf(params);
  let target = targets.get(key);
  if (target === undefined) {
    if (targets.size >= MAX_TARGETS) return Promise.resolve(undefined);
    target = { opening: undefined, client: undefined, failedAt: Number.NEGATIVE_INFINITY, idle: undefined };
    targets.set(key, target);
  }
  const t = target;
  if (t.opening === undefined) {
    if (performance.now() - t.failedAt < RETRY_AFTER_MS) return Promise.resolve(undefined);
    // Outside the app's trace: a connect span of instrumentation-pg's would otherwise join the app's request.
    t.opening = context.with(ROOT_CONTEXT, () => open(t, client as PgClientLike, params, pgClass));
  }
  const opened = t.opening;
  return opened.then((side) => {
    if (side) keepOpen(t);
    return side;
  });
}

async function open(
  target: Target,
  app: PgClientLike,
  params: NonNullable<PgClientLike['connectionParameters']>,
  { Client, query }: NonNullable<ReturnType<typeof pgClassOf>>,
): Promise<SideConnection | undefined> {
  const forget = () => {
    target.opening = undefined;
    target.client = undefined;
    clearTimeout(target.idle);
  };
  try {
    const client = new Client({
      host: params.host,
      port: params.port,
      user: params.user,
      database: params.database,
      password: app.password ?? params.password,
      ssl: params.ssl,
      options: params.options,
      application_name: 'pgsight forensics',
      statement_timeout: SIDE_STATEMENT_TIMEOUT_MS,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    client.on('error', forget);
    client.on('end', forget);
    await client.connect();
    // Unref'd while idle, so the app exits as it would without pgsight; ref'd while a statement of pgsight's
    // is out, so that a record waiting for its answer is not lost when the app's last work ends first.
    const stream = client.connection?.stream;
    stream?.unref?.();
    target.client = client;
    let out = 0;
    const settled = () => {
      if (--out === 0) stream?.unref?.();
    };
    const run = (text: string, values?: unknown[], extended?: boolean) => {
      if (out++ === 0) stream?.ref?.();
      const result = query.call(
        client,
        extended ? { text, values, queryMode: 'extended' } : { text, values },
      );
      result.then(settled, settled);
      return result.then((r) => r.rows);
    };
    const [row] = await run("SELECT current_setting('server_version_num')::int AS v");
    let last: Promise<unknown> = Promise.resolve();
    const side: SideConnection = {
      query: run,
      serverVersion: Number(row?.v) || 0,
      exclusive(fn) {
        const next = last.then(
          () => fn(side),
          () => fn(side),
        );
        last = next.catch(() => undefined);
        return next;
      },
    };
    return side;
  } catch {
    forget();
    target.failedAt = performance.now();
    return undefined;
  }
}

function keepOpen(target: Target): void {
  clearTimeout(target.idle);
  target.idle = setTimeout(() => {
    const client = target.client;
    target.opening = undefined;
    target.client = undefined;
    client?.end().catch(() => undefined);
  }, IDLE_CLOSE_MS);
  target.idle.unref();
}

/** Close every side connection (tests, and a process that wants its server connections back). */
export async function closeSideConnections(): Promise<void> {
  const open = [...targets.values()];
  targets.clear();
  await Promise.all(
    open.map(async (target) => {
      clearTimeout(target.idle);
      const client = target.client ?? ((await target.opening) && target.client);
      await client?.end().catch(() => undefined);
    }),
  );
}
