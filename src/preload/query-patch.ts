/**
 * The wrapper around pg's `Client.prototype.query`: every query through pg (Client and Pool, promise and
 * callback, text and config object, named statements, submittables such as pg-cursor) is timed, whether or
 * not its trace is sampled.
 *
 * Why hand-written rather than instrumentation-pg's own query patch (docs/design.md#its-own-query-patch):
 * that patch builds a span and its attributes for every query even when no trace is sampled, several times
 * the preload's whole budget in bench/pg.mjs, and records no SQLSTATE for promise-style failures. This wrapper allocates
 * nothing on the fast path beyond the completion closure, starts a span only when a tracer provider is
 * installed, and leaves connect spans and pool metrics to instrumentation-pg.
 *
 *   app ── client.query(...) ──▶ [pgsight wrapper] ──▶ pg's original query ──▶ PostgreSQL
 *                                   │ start = now, span?
 *                                   └─ on result/error ─▶ recorder.end(): span, histogram, slow/failed record
 */
import {
  type Context,
  context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  TraceFlags,
  type Tracer,
} from '@opentelemetry/api';
import { currentLogScope } from '../ecs/log-context.js';
import { countQuery } from '../ecs/query-tally.js';
import { namespaceOf } from '../pg/namespace.js';
import type { NormalizedQuery } from '../pg/normalize.js';
import { queryEnded, queryStarted } from './forensics.js';
import type { ManualTracker } from './manual-transactions.js';
import { takeHandedCount } from './pool-watch.js';
import { type ClientInfo, type QueryRecorder, querySpanName } from './query-recorder.js';

/** Set on every pgsight wrapper, so start-up can check that pg really got patched. */
export const PGSIGHT_WRAPPED = Symbol.for('pgsight.wrapped');

type QueryFn = (this: ClientInfo, ...args: unknown[]) => unknown;
type Callback = (this: unknown, err: unknown, result: unknown) => unknown;

export interface QueryPatchState {
  recorder: QueryRecorder;
  normalize: (sql: string) => NormalizedQuery;
  /** Undefined when no tracer provider is installed: then no span is started at all. */
  tracer: Tracer | undefined;
  /** Watchdog and end record for transactions written by hand. */
  manual: ManualTracker | undefined;
  /** PGSIGHT_SQLCOMMENTER: sampled query spans' statements carry their traceparent. */
  sqlcommenter: boolean;
  /** Called once with the first internal failure; the query itself always proceeds. */
  onInternalError: (error: unknown) => void;
}

function startSpan(
  state: QueryPatchState,
  client: ClientInfo,
  text: string,
  parent: Context,
): Span | undefined {
  const tracer = state.tracer;
  if (tracer === undefined) return undefined;
  const span = tracer.startSpan('pg.query', { kind: SpanKind.CLIENT }, parent);
  if (!span.isRecording()) return span;
  const query = state.normalize(text);
  span.updateName(querySpanName(query, client.database));
  span.setAttributes({
    'db.system.name': 'postgresql',
    'db.namespace': namespaceOf(client),
    'db.operation.name': query.operation,
    'db.query.text': query.text,
    'pgsight.query.fingerprint': query.fingerprint,
    'server.address': client.host,
    'server.port': client.port,
  });
  if (query.collection) span.setAttribute('db.collection.name', query.collection);
  if (query.summary) span.setAttribute('db.query.summary', query.summary);
  return span;
}

/** A statement that already ends with a comment (a block comment, or a line comment on its last line). */
const ENDS_WITH_COMMENT = /\*\/\s*;?\s*$|--[^\n]*$/;

/**
 * The statement to send with the span's `traceparent` appended in sqlcommenter's format
 * (https://google.github.io/sqlcommenter/spec/), before a final semicolon, when the span is sampled. Undefined
 * when it is to go as it is: a named prepared statement (a changed text would be a different statement under
 * the same name: brianc/node-postgres#2735), a statement ending with a comment, an unsampled span. A config
 * object is not copied: the text is an own property of an object whose prototype is the app's config, so
 * everything else pg reads (values, rowMode, types, getters of query builders) is the app's.
 */
function withTraceparent(config: unknown, text: string, span: Span): unknown {
  const { traceId, spanId, traceFlags } = span.spanContext();
  if ((traceFlags & TraceFlags.SAMPLED) === 0 || ENDS_WITH_COMMENT.test(text)) return undefined;
  if (typeof config === 'object' && (config as { name?: unknown }).name) return undefined;
  const comment = `/*traceparent='00-${traceId}-${spanId}-01'*/`;
  const semicolon = /;\s*$/.exec(text);
  const commented = semicolon
    ? `${text.slice(0, semicolon.index)} ${comment}${text.slice(semicolon.index)}`
    : `${text} ${comment}`;
  if (typeof config === 'string') return commented;
  return Object.create(config as object, {
    text: { value: commented, enumerable: true, writable: true, configurable: true },
  });
}

/**
 * A query object pg hands the connection's messages to (pg-cursor, pg-query-stream, the app's own): pg calls
 * its `handleError` when the server reports an error and its `handleReadyForQuery` when the statement is
 * over (a cursor's portal closed, a stream read to its end), whatever the object does with them.
 */
interface Submittable {
  text?: unknown;
  values?: unknown;
  /** pg-query-stream keeps its statement on the pg-cursor it reads from. */
  cursor?: { text?: unknown; values?: unknown };
  handleError?: (...args: unknown[]) => unknown;
  handleReadyForQuery?: (...args: unknown[]) => unknown;
}

/** The statement of a submittable pgsight can observe (it has both handlers), else undefined. */
function submittableText(q: Submittable): string | undefined {
  if (typeof q.handleError !== 'function' || typeof q.handleReadyForQuery !== 'function') return undefined;
  if (typeof q.text === 'string') return q.text;
  return typeof q.cursor?.text === 'string' ? q.cursor.text : undefined;
}

/**
 * Time a submittable from submit to its end: the first of its error and its ReadyForQuery. Its two handlers
 * become own wrappers that call pgsight first and then the handler it had, with the same `this` and
 * arguments: what the object does, emits or calls back is unchanged.
 */
function observeSubmittable(q: Submittable, done: (error: unknown) => void): void {
  const onError = q.handleError as (...args: unknown[]) => unknown;
  const onReady = q.handleReadyForQuery as (...args: unknown[]) => unknown;
  q.handleError = function handleError(this: unknown, error: unknown) {
    done(error);
    return onError.apply(this, arguments as never);
  };
  q.handleReadyForQuery = function handleReadyForQuery(this: unknown) {
    done(undefined);
    return onReady.apply(this, arguments as never);
  };
}

/**
 * Promise style. pg builds the promise with `new client._Promise(executor)`, its executor handing the query a
 * callback that settles it. For the one call, the wrapper puts this constructor in `_Promise`: it gives the
 * executor resolve/reject functions that see the end first, so the app gets pg's own promise with no reaction
 * of pgsight's on it. (A `.then` of ours would be a second reaction, and V8 then stops the async stack trace
 * pg re-captures at that promise: the app's `at async ...` frames would be lost.) One function for every
 * query, handed what it needs through two variables (pg calls it synchronously inside `query()`), keeps
 * pg's `new` site from seeing a new constructor per query.
 */
let nextSettle: PromiseConstructor | undefined;
let nextDone: ((error: unknown) => void) | undefined;
const ObservedPromise = function ObservedPromise(executor: ConstructorParameters<PromiseConstructor>[0]) {
  const Settle = nextSettle as PromiseConstructor;
  const done = nextDone as (error: unknown) => void;
  nextSettle = undefined;
  nextDone = undefined;
  return new Settle((resolve, reject) =>
    executor(
      (value) => {
        done(undefined);
        resolve(value);
      },
      (error) => {
        done(error);
        reject(error);
      },
    ),
  );
} as unknown as PromiseConstructor;

/**
 * Wrap pg's query function. `original` must be pg's own, not another wrapper. The wrapper forwards `arguments`
 * untouched (pg inspects their count and types), which also avoids allocating a rest array per query.
 */
export function wrapQuery(original: QueryFn, state: QueryPatchState): QueryFn {
  const wrapped = function query(
    this: ClientInfo,
    config: unknown,
    values: unknown,
    callback: unknown,
  ): unknown {
    let text: string | undefined;
    let submittable: Submittable | undefined;
    if (typeof config === 'string') text = config;
    else if (config !== null && typeof config === 'object') {
      if (typeof (config as { submit?: unknown }).submit === 'function') {
        submittable = config as Submittable;
        text = submittableText(submittable);
      } else {
        const t = (config as { text?: unknown }).text;
        if (typeof t === 'string') text = t;
      }
    }
    if (text === undefined) return original.apply(this, arguments as never);
    const parent = context.active();
    let span: Span | undefined;
    try {
      span = startSpan(state, this, text, parent);
    } catch (error) {
      state.onInternalError(error);
    }
    if (state.sqlcommenter && span !== undefined && submittable === undefined)
      try {
        const commented = withTraceparent(config, text, span);
        if (commented !== undefined) {
          config = commented;
          arguments[0] = commented;
        }
      } catch (error) {
        state.onInternalError(error);
      }
    const params = Array.isArray(values)
      ? values
      : ((config as { values?: unknown })?.values ?? submittable?.cursor?.values);
    let watchdog: ReturnType<ManualTracker['before']>;
    try {
      watchdog = state.manual?.before(this, text, wrapped);
      watchdog?.queryStarted();
    } catch (error) {
      state.onInternalError(error);
    }
    const scope = currentLogScope();
    // N+1 counts: a pool.query's was made at the app's call (pool-watch.ts) and is handed over here.
    let count = takeHandedCount(this);
    if (count !== undefined) count.namespace ??= namespaceOf(this);
    else if (scope?.tally !== undefined)
      try {
        count = countQuery(scope, text, this, wrapped);
      } catch (error) {
        state.onInternalError(error);
      }
    const start = performance.now();
    const inFlight = queryStarted(this, text, params, start, scope, span);
    let ended = false;
    const done = (error: unknown) => {
      if (ended) return;
      ended = true;
      try {
        if (inFlight !== undefined) queryEnded(inFlight);
        if (watchdog) {
          watchdog.queryEnded();
          state.manual?.after(this, text, error);
        }
        const durationMs = performance.now() - start;
        if (count !== undefined) count.ms += durationMs;
        state.recorder.end(this, text, params, durationMs, error, span, scope, inFlight);
      } catch (internal) {
        state.onInternalError(internal);
      }
    };

    if (submittable !== undefined) {
      observeSubmittable(submittable, done);
      return original.apply(this, arguments as never);
    }

    // Callback style: the callback is the last function argument, or `config.callback`.
    const cbIndex = typeof callback === 'function' ? 2 : typeof values === 'function' ? 1 : -1;
    const userCallback =
      cbIndex >= 0
        ? (arguments[cbIndex] as Callback)
        : typeof (config as { callback?: unknown })?.callback === 'function'
          ? (config as { callback: Callback }).callback
          : undefined;
    if (userCallback !== undefined) {
      const bound: Callback = function (this: unknown, err, result) {
        done(err);
        // pg may run the callback from a socket event of another request; give it back its caller's context.
        return parent === ROOT_CONTEXT
          ? userCallback.call(this, err, result)
          : context.with(parent, userCallback, this, err, result);
      };
      if (cbIndex === 2) return original.call(this, config, values, bound);
      if (cbIndex === 1) return original.call(this, config, bound);
      return original.call(this, { ...(config as object), callback: bound }, values);
    }

    // Promise style: observed through pg's own promise (ObservedPromise above).
    const client = this as ClientInfo & { _Promise?: PromiseConstructor };
    const Settle = client._Promise === ObservedPromise ? undefined : client._Promise;
    if (typeof Settle === 'function') {
      nextSettle = Settle;
      nextDone = done;
      client._Promise = ObservedPromise;
    }
    let result: unknown;
    try {
      result = original.apply(this, arguments as never);
    } catch (error) {
      done(error);
      throw error;
    } finally {
      if (typeof Settle === 'function') client._Promise = Settle;
    }
    const observed = typeof Settle === 'function' && nextDone === undefined;
    nextDone = undefined;
    nextSettle = undefined;
    if (observed) return result;
    // A pg that builds its promise otherwise: observed from outside, as a last resort.
    if (
      result !== null &&
      typeof result === 'object' &&
      typeof (result as Promise<unknown>).then === 'function'
    ) {
      (result as Promise<unknown>).then(
        () => done(undefined),
        (error: unknown) => done(error),
      );
    } else {
      done(undefined);
    }
    return result;
  };
  Object.defineProperty(wrapped, PGSIGHT_WRAPPED, { value: true });
  return wrapped as QueryFn;
}

export function isPgsightWrapped(fn: unknown): boolean {
  return typeof fn === 'function' && (fn as unknown as Record<symbol, unknown>)[PGSIGHT_WRAPPED] === true;
}
