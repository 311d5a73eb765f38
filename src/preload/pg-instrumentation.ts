/**
 * instrumentation-pg with its query patch replaced by pgsight's (see query-patch.ts for why). Its module
 * hooks, version ranges, connect spans and pool metrics are kept as they are: pgsight chains its own patch
 * after each of instrumentation-pg's, for `pg`, `pg/lib/client.js` and `pg/lib/native/client.js` alike, so
 * the same class is patched once whether the app imports pg as ESM or requires it as CommonJS.
 */
import { context, ValueType } from '@opentelemetry/api';
import { currentLogScope, inLogScope } from '../ecs/log-context.js';
import { watchPool } from './manual-transactions.js';
import {
  type InstrumentationModuleFile,
  type InstrumentationNodeModuleDefinition,
  isWrapped,
  PgInstrumentation,
  type PgInstrumentationConfig,
  type ShimWrapped,
} from './otel-vendor.js';
import { poolName, timedConnect, watchReleases, wrapPoolQuery } from './pool-watch.js';
import { isPgsightWrapped, type QueryPatchState, wrapQuery } from './query-patch.js';
import type { QueryInstruments } from './query-recorder.js';

const POOL_WATCH = Symbol('pgsight.poolWatch');

type ClientClass = { prototype: { query: (...args: unknown[]) => unknown } };

/** ESM namespaces hand the CommonJS exports over as `default`. */
function moduleExports<T>(module: unknown): T {
  const m = module as { [Symbol.toStringTag]?: string; default?: T };
  return (m?.[Symbol.toStringTag] === 'Module' ? m.default : m) as T;
}

export class PgsightPgInstrumentation extends PgInstrumentation {
  // `declare`: these are assigned after super(), which already calls init() and _updateMetricInstruments().
  declare private patchState: QueryPatchState | undefined;
  declare private instruments: (QueryInstruments & { wanted: boolean }) | undefined;

  constructor(
    config: PgInstrumentationConfig,
    state: QueryPatchState,
    instruments: QueryInstruments & { wanted: boolean },
  ) {
    super(config);
    this.patchState = state;
    this.instruments = instruments;
    this._updateMetricInstruments();
    countPerPool(this as unknown as PoolMetricsInternals);
  }

  protected override init(): InstrumentationNodeModuleDefinition[] {
    const definitions = super.init();
    for (const definition of definitions) {
      if (definition.name === 'pg-pool')
        this.chain(
          definition,
          () => undefined,
          (exports) => this.patchPool(exports),
        );
      if (definition.name !== 'pg') continue;
      this.chain(definition, (exports) => moduleExports<{ Client?: ClientClass }>(exports)?.Client);
      for (const file of definition.files as InstrumentationModuleFile[]) {
        this.chain(file, (exports) => moduleExports<ClientClass>(exports));
      }
    }
    return definitions;
  }

  override _updateMetricInstruments(): void {
    super._updateMetricInstruments();
    const instruments = this.instruments;
    if (!instruments?.wanted) return;
    instruments.duration = this.meter.createHistogram('db.client.operation.duration', {
      description: 'Duration of database client operations.',
      unit: 's',
      valueType: ValueType.DOUBLE,
      advice: { explicitBucketBoundaries: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10] },
    });
    // OpenTelemetry's database metrics (Development): how long a checkout waited, how long a lease lasted.
    instruments.waitTime = this.meter.createHistogram('db.client.connection.wait_time', {
      description: 'The time it took to obtain an open connection from the pool.',
      unit: 's',
      valueType: ValueType.DOUBLE,
      advice: { explicitBucketBoundaries: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10] },
    });
    instruments.useTime = this.meter.createHistogram('db.client.connection.use_time', {
      description: 'The time between borrowing a connection and returning it to the pool.',
      unit: 's',
      valueType: ValueType.DOUBLE,
      advice: { explicitBucketBoundaries: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10] },
    });
    instruments.slowQueries = this.meter.createCounter('pgsight.db.slow_queries', {
      description: 'Queries that took at least PGSIGHT_SLOW_QUERY_MS.',
      unit: '{query}',
      valueType: ValueType.INT,
    });
    instruments.forensicsSkipped = this.meter.createCounter('pgsight.db.forensics.skipped', {
      description:
        'Slow queries whose server-side sample was skipped: over PGSIGHT_FORENSICS_PER_S, no connection of pgsight own, or the sample failed.',
      unit: '{query}',
      valueType: ValueType.INT,
    });
  }

  private chain(
    target: {
      patch?: ((exports: unknown, version?: string) => unknown) | undefined;
      unpatch?: ((exports: unknown, version?: string) => void) | undefined;
    },
    clientOf: (exports: unknown) => ClientClass | undefined,
    also?: (exports: unknown) => void,
  ): void {
    const patch = target.patch;
    const unpatch = target.unpatch;
    target.patch = (exports, version) => {
      const result = patch ? patch(exports, version) : exports;
      this.patchClient(clientOf(result));
      also?.(result);
      return result;
    };
    target.unpatch = (exports, version) => {
      this.unpatchClient(clientOf(exports));
      unpatch?.(exports, version);
    };
  }

  private patchClient(Client: ClientClass | undefined): void {
    const proto = Client?.prototype;
    const state = this.patchState;
    if (!proto || typeof proto.query !== 'function' || !state || isPgsightWrapped(proto.query)) return;
    const current = proto.query as ShimWrapped & ((...args: unknown[]) => unknown);
    const pgOriginal = (isWrapped(current) ? current.__original : current) as (...args: unknown[]) => unknown;
    const wrapped = wrapQuery(pgOriginal, state);
    // Marked the way shimmer marks wrappers, so instrumentation-pg's own re-patch unwraps this one cleanly.
    Object.defineProperties(wrapped, {
      __original: { value: pgOriginal },
      __wrapped: { value: true },
      __unwrap: {
        value: () => {
          if (proto.query === wrapped) proto.query = pgOriginal;
        },
      },
    });
    proto.query = wrapped;
  }

  /**
   * Watch every pool's releases for clients returned inside a transaction (manual-transactions.ts). When
   * neither pool metrics nor connect spans are wanted, instrumentation-pg's own pool.connect wrapper (which
   * adds four pool listeners that update metric counters on every checkout and release) is taken off again:
   * work nobody reads, on every pool query.
   */
  private patchPool(exports: unknown): void {
    const Pool = moduleExports<{ prototype?: { connect?: (callback?: unknown) => unknown } }>(exports);
    const proto = Pool?.prototype;
    let connect = proto?.connect;
    if (
      !proto ||
      typeof connect !== 'function' ||
      (connect as unknown as Record<symbol, unknown>)[POOL_WATCH]
    )
      return;
    const poolInstrumentationWanted =
      this.instruments?.wanted || this.getConfig().ignoreConnectSpans === false;
    if (!poolInstrumentationWanted && isWrapped(connect)) {
      connect = (connect as unknown as ShimWrapped).__original as (callback?: unknown) => unknown;
    }
    const original = connect;
    const watching = function (this: object, callback?: unknown) {
      watchPool(this);
      watchReleases(this);
      return timedConnect(
        this,
        original as never,
        typeof callback === 'function' && mayWait(this as PoolState)
          ? keepContext(callback as PoolCallback)
          : (callback as PoolCallback | undefined),
        watching,
      );
    };
    // `__original`, as shimmer marks its wrappers: what the wrapper calls (bench/pg-inprocess.cjs swaps it in).
    Object.defineProperties(watching, { [POOL_WATCH]: { value: true }, __original: { value: original } });
    proto.connect = watching;
    const query = (proto as { query?: unknown }).query;
    if (typeof query === 'function' && !(query as unknown as Record<symbol, unknown>)[POOL_WATCH]) {
      const counted = wrapPoolQuery(query as never);
      Object.defineProperties(counted, { [POOL_WATCH]: { value: true }, __original: { value: query } });
      (proto as { query?: unknown }).query = counted;
    }
  }

  private unpatchClient(Client: ClientClass | undefined): void {
    const proto = Client?.prototype;
    if (proto && isPgsightWrapped(proto.query))
      proto.query = (proto.query as unknown as ShimWrapped).__original as never;
  }
}

type PoolCallback = (this: unknown, error: unknown, client: unknown, release: unknown) => unknown;

interface PoolState {
  idleCount?: number;
  totalCount?: number;
  waitingCount?: number;
  options?: { max?: number };
}

/**
 * Whether this checkout may have to wait for another request's release. An idle client is handed over on
 * process.nextTick and a new one from its own connection's events, both in the caller's context: only a
 * checkout that queues needs its context restored. (pg-pool's counters; unknown shapes count as waiting.)
 */
function mayWait(pool: PoolState): boolean {
  const { idleCount, totalCount, waitingCount } = pool;
  if (idleCount === undefined || totalCount === undefined) return true;
  return (waitingCount ?? 0) > 0 || (idleCount === 0 && totalCount >= (pool.options?.max ?? 10));
}

/**
 * pg-pool hands a client to a waiting caller from the release of another: without this, the waiter's query
 * (pool.query's too) runs in the releasing request's context, and its span and records name that request.
 * Only pgsight's log context and the OpenTelemetry context are restored, and only when they differ:
 * AsyncResource.bind would restore every store, at several times the cost per checkout.
 */
function keepContext(callback: PoolCallback): PoolCallback {
  const scope = currentLogScope();
  const active = context.active();
  return function (this: unknown, error, client, release) {
    const call = () =>
      context.active() === active
        ? callback.call(this, error, client, release)
        : context.with(active, callback, this, error, client, release);
    return inLogScope(scope, call);
  };
}

/** The parts of instrumentation-pg that keep its pool metrics (its own names, not a public API). */
interface PoolMetricsInternals {
  _setPoolConnectEventListeners: (pool: PoolEvents) => void;
  _connectionsCount: { add(value: number, attributes: Record<string, string>): void };
  _connectionPendingRequests: { add(value: number, attributes: Record<string, string>): void };
  _connectionMax: { add(value: number, attributes: Record<string, string>): void };
  _poolMaxValues: Map<object, { value: number; attributes: Record<string, string> }>;
}

interface PoolEvents extends PoolState {
  on(event: string, listener: (client?: unknown) => void): unknown;
}

const COUNTED = Symbol('pgsight.poolCounted');

/**
 * instrumentation-pg's `db.client.connection.count` / `pending_requests` / `max`, counted per pool:
 * instrumentation-pg keeps one "last seen" state for every pool, so with two pools each update adds the
 * other's difference (open-telemetry/opentelemetry-js-contrib#3354), and names pools `host:port/database`,
 * so two pools of one database share their series. Here each pool has its own state and its own name
 * (pool-watch.ts), known once its first client connected. Its `_removePoolMax` (on pool.end) still applies.
 */
function countPerPool(instrumentation: PoolMetricsInternals): void {
  if (typeof instrumentation._setPoolConnectEventListeners !== 'function') return;
  instrumentation._setPoolConnectEventListeners = (pool) => {
    const marked = pool as PoolEvents & { [COUNTED]?: boolean };
    if (marked[COUNTED]) return;
    marked[COUNTED] = true;
    const last = { used: 0, idle: 0, pending: 0 };
    const update = (client?: unknown) => {
      const name = poolName(pool, client as object | undefined);
      if (name === undefined) return;
      const attributes = { 'db.client.connection.pool.name': name };
      if (!instrumentation._poolMaxValues.has(pool)) {
        const value = pool.options?.max ?? 10;
        instrumentation._poolMaxValues.set(pool, { value, attributes });
        instrumentation._connectionMax.add(value, attributes);
      }
      const idle = pool.idleCount ?? 0;
      const used = (pool.totalCount ?? 0) - idle;
      const pending = pool.waitingCount ?? 0;
      instrumentation._connectionsCount.add(used - last.used, {
        ...attributes,
        'db.client.connection.state': 'used',
      });
      instrumentation._connectionsCount.add(idle - last.idle, {
        ...attributes,
        'db.client.connection.state': 'idle',
      });
      instrumentation._connectionPendingRequests.add(pending - last.pending, attributes);
      last.used = used;
      last.idle = idle;
      last.pending = pending;
    };
    pool.on('connect', (client) => update(client));
    for (const event of ['acquire', 'release', 'remove']) pool.on(event, () => update());
  };
}
