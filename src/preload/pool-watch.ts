/**
 * Pool checkouts, timed per pool: how long each `pool.connect()` / `pool.query()` waited for a client, the
 * `db.client.connection.wait_time` and `use_time` histograms, and a `db.pool.wait` record when a checkout
 * waited PGSIGHT_POOL_WAIT_MS or more (one per pool per second, the rest folded into the next).
 *
 *   pool.query(text) ─▶ counted for N+1 here (the app's call site is on this stack, not on client.query's)
 *        └─ pool.connect(cb) ─▶ timed ─▶ cb(client) ─▶ client.query(text): the count is handed over
 *
 * Each pool has its own name and counters (instrumentation-pg keeps one set for all pools:
 * open-telemetry/opentelemetry-js-contrib#3354): `db.client.connection.pool.name` is the client's
 * `application_name`, else `host:port/database`, as pg resolved them for the pool's first client, with
 * `#2`, `#3`... for further pools of the same name, in the order they first connect.
 */
import type { Histogram } from '@opentelemetry/api';
import { dbEvent } from '../ecs/fields.js';
import { currentLogScope } from '../ecs/log-context.js';
import { captureCallSite, type Origin, originFields } from '../ecs/origin.js';
import { pgsightLogger } from '../ecs/pgsight-logger.js';
import { countQuery, type QueryCount } from '../ecs/query-tally.js';
import { namespaceOf } from '../pg/namespace.js';

export interface PoolInstruments {
  waitTime: Histogram | undefined;
  useTime: Histogram | undefined;
}

interface PgPool {
  totalCount?: number;
  idleCount?: number;
  waitingCount?: number;
  options?: { max?: number };
  Promise?: PromiseConstructor;
  on?: (event: string, listener: (...args: unknown[]) => void) => unknown;
}

interface PgClient {
  host?: string;
  port?: number;
  database?: string;
  connectionParameters?: { application_name?: string; options?: string };
}

interface PoolState {
  name: string | undefined;
  lastRecordAt: number;
  folded: number;
  /** Its `release` listener is added. */
  releases: boolean;
}

const namesTaken = new Map<string, number>();
/**
 * A pool's state and a client's current lease are kept on the object itself, under symbols: a property
 * read or write per checkout, where a WeakMap look-up costs several times more (bench/pg-inprocess.cjs).
 */
const POOL_STATE = Symbol('pgsight.poolState');
const LEASE = Symbol('pgsight.lease');
interface Lease {
  /** The checkout's wait (ms), for the slow-query records of the lease; undefined once released. */
  waited: number | undefined;
  /** When the lease began (performance.now()). */
  at: number;
}
type WithLease = { [LEASE]?: Lease };
/** A pool.query's N+1 count, handed to the client.query it becomes (synchronously, through connect()). */
let pendingCount: QueryCount | undefined;
const handedCounts = new WeakMap<object, QueryCount>();
let handedOver = 0;

let settings = { waitMs: 100, instruments: { waitTime: undefined, useTime: undefined } as PoolInstruments };

export function setPoolWatchSettings(waitMs: number, instruments: PoolInstruments): void {
  settings = { waitMs, instruments };
}

function stateOf(pool: object): PoolState {
  const p = pool as { [POOL_STATE]?: PoolState };
  let state = p[POOL_STATE];
  if (state === undefined) {
    state = { name: undefined, lastRecordAt: -Infinity, folded: 0, releases: false };
    Object.defineProperty(p, POOL_STATE, { value: state, writable: true, configurable: true });
  }
  return state;
}

/** The pool's name, fixed by its first client (undefined before one connected). */
export function poolName(pool: object, client?: object): string | undefined {
  const state = stateOf(pool);
  if (state.name !== undefined || client === undefined) return state.name;
  const c = client as PgClient;
  const base = c.connectionParameters?.application_name || `${c.host}:${c.port}/${c.database}`;
  const n = (namesTaken.get(base) ?? 0) + 1;
  namesTaken.set(base, n);
  state.name = n === 1 ? base : `${base}#${n}`;
  return state.name;
}

/** How long the client's current lease waited for it (ms), when it came from a watched pool. */
export function checkoutWaitMs(client: object): number | undefined {
  return (client as WithLease)[LEASE]?.waited;
}

/** The N+1 count a pool.query handed to this client.query, if any (taken once). */
export function takeHandedCount(client: object): QueryCount | undefined {
  if (handedOver === 0) return undefined;
  const count = handedCounts.get(client);
  if (count !== undefined) {
    handedCounts.delete(client);
    handedOver--;
  }
  return count;
}

type QueryFn = (this: object, ...args: unknown[]) => unknown;

/** pool.query, counted for N+1 at the app's call. */
export function wrapPoolQuery(original: QueryFn): QueryFn {
  const query = function query(this: object, text: unknown) {
    const scope = currentLogScope();
    if (scope?.tally !== undefined) {
      const statement =
        typeof text === 'string' ? text : (text as { text?: unknown } | null | undefined)?.text;
      if (typeof statement === 'string') {
        pendingCount = countQuery(scope, statement, undefined, query);
        try {
          return original.apply(this, arguments as never);
        } finally {
          pendingCount = undefined;
        }
      }
    }
    return original.apply(this, arguments as never);
  };
  return query;
}

type ConnectCallback = (this: unknown, error: unknown, client: unknown, release: unknown) => unknown;

/**
 * pool.connect, timed. The callback style is kept; a promise-style call is made callback style and its
 * promise built here with the pool's own Promise, as pg-pool builds it.
 */
export function timedConnect(
  pool: object,
  original: (this: object, callback: ConnectCallback) => unknown,
  callback: ConnectCallback | undefined,
  above: (...args: never[]) => unknown,
): unknown {
  const p = pool as PgPool;
  const handed = pendingCount;
  pendingCount = undefined;
  // The call site only for a checkout that will wait (no idle client): a stack costs microseconds.
  const origin = p.idleCount === 0 ? captureCallSite(above, 24) : undefined;
  const start = performance.now();
  const done = (error: unknown, client: unknown) => {
    try {
      const now = performance.now();
      const waited = now - start;
      if (client && typeof client === 'object') {
        const leased = client as WithLease;
        const lease = leased[LEASE];
        if (lease === undefined)
          Object.defineProperty(leased, LEASE, {
            value: { waited, at: now },
            writable: true,
            configurable: true,
          });
        else {
          lease.waited = waited;
          lease.at = now;
        }
        if (handed) {
          if (!handedCounts.has(client)) handedOver++;
          handedCounts.set(client, handed);
        }
      }
      const name = poolName(pool, error ? undefined : (client as object));
      settings.instruments.waitTime?.record(
        waited / 1000,
        name ? { 'db.client.connection.pool.name': name } : {},
      );
      if (settings.waitMs > 0 && waited >= settings.waitMs) recordWait(p, name, waited, origin, client);
    } catch {
      // never in the app's way
    }
  };
  if (typeof callback === 'function')
    return original.call(pool, function (this: unknown, error, client, release) {
      done(error, client);
      return callback.call(this, error, client, release);
    });
  const Settle = p.Promise ?? Promise;
  return new Settle((resolve, reject) => {
    original.call(pool, (error, client) => {
      done(error, client);
      if (error) reject(error);
      else resolve(client);
    });
  });
}

/** Once per pool: the use-time histogram, from checkout to release. */
export function watchReleases(pool: object): void {
  const p = pool as PgPool;
  const state = stateOf(pool);
  if (state.releases || typeof p.on !== 'function') return;
  state.releases = true;
  p.on('release', (_error: unknown, client: unknown) => {
    if (!client || typeof client !== 'object') return;
    const lease = (client as WithLease)[LEASE];
    if (lease === undefined || lease.waited === undefined) return;
    lease.waited = undefined;
    const useTime = settings.instruments.useTime;
    if (useTime === undefined) return;
    const name = state.name;
    useTime.record(
      (performance.now() - lease.at) / 1000,
      name ? { 'db.client.connection.pool.name': name } : {},
    );
  });
}

function recordWait(
  pool: PgPool,
  name: string | undefined,
  waited: number,
  origin: Origin | undefined,
  client: unknown,
): void {
  const state = stateOf(pool);
  const now = performance.now();
  if (now - state.lastRecordAt < 1000) {
    state.folded++;
    return;
  }
  state.lastRecordAt = now;
  const folded = state.folded;
  state.folded = 0;
  const total = pool.totalCount ?? 0;
  const idle = pool.idleCount ?? 0;
  const namespace = client && typeof client === 'object' ? namespaceOf(client as PgClient) : undefined;
  pgsightLogger().warn(
    {
      event: dbEvent('db.pool.wait', undefined, waited),
      db: {
        system: { name: 'postgresql' },
        ...(namespace ? { namespace } : {}),
        client: {
          connection: {
            wait_ms: Math.round(waited * 1000) / 1000,
            pool: {
              ...(name ? { name } : {}),
              max: pool.options?.max ?? 10,
              idle,
              used: total - idle,
              pending: pool.waitingCount ?? 0,
              ...(folded > 0 ? { folded_waits: folded } : {}),
            },
          },
        },
      },
      ...(origin ? originFields(origin, true) : {}),
    },
    `waited ${waited.toFixed(1)} ms for a connection from pool ${name ?? '(not connected)'}${folded > 0 ? ` (and ${folded} more waits in the last second)` : ''}`,
  );
}
