/**
 * What happens when a query ends: the span gets its outcome, the duration histogram its sample, and a slow
 * or failed query becomes one ECS record. Kept apart from the patch so that the hot path stays short.
 */
import {
  type Attributes,
  type Counter,
  type Histogram,
  isSpanContextValid,
  type Span,
  type SpanContext,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { Config } from '../config/env.js';
import type { PgsightLogger } from '../ecs/ecs-logger.js';
import { dbEvent, transactionLabel } from '../ecs/fields.js';
import { inLogScope, type LogScope } from '../ecs/log-context.js';
import { maskErrorValues } from '../pg/error-values.js';
import { namespaceOf } from '../pg/namespace.js';
import type { NormalizedQuery } from '../pg/normalize.js';
import { sqlStateOf } from '../pg/sqlstate.js';
import { ACTIVE, type Transaction } from '../transaction/handle.js';
import { fieldsFor, holdRecord, type InFlight, spanAttributes } from './forensics.js';
import { checkoutWaitMs, type PoolInstruments } from './pool-watch.js';

/** The parts of a pg Client the recorder reads. */
export interface ClientInfo {
  database?: string;
  host?: string;
  port?: number;
}

export interface QueryInstruments extends PoolInstruments {
  /** `db.client.operation.duration` (s), the same instrument instrumentation-pg declares. */
  duration: Histogram | undefined;
  /** `pgsight.db.slow_queries`. */
  slowQueries: Counter | undefined;
  /** `pgsight.db.forensics.skipped`: slow queries whose server-side sample was skipped, by reason. */
  forensicsSkipped: Counter | undefined;
}

export interface QueryRecorder {
  /** Called once per query, after it ended. `span` is undefined when no span was started. */
  end(
    client: ClientInfo,
    text: string,
    values: unknown,
    durationMs: number,
    error: unknown,
    span: Span | undefined,
    /** The log context the query was issued in (its end runs in a socket event's context). */
    scope?: LogScope,
    /** Its entry in forensics' in-flight list, when forensics is on. */
    inFlight?: InFlight,
  ): void;
  /** A query still in flight at 10x the threshold: its `db.query.running` record. */
  running(entry: InFlight, elapsedMs: number, forensics: Record<string, unknown>): void;
}

const MAX_PARAM_LENGTH = 256;

function stringifyParam(value: unknown): string {
  const text =
    value === null || value === undefined
      ? String(value)
      : typeof value === 'object'
        ? value instanceof Date
          ? value.toISOString()
          : Buffer.isBuffer(value)
            ? `<${value.length} bytes>`
            : JSON.stringify(value)
        : String(value);
  return text.length > MAX_PARAM_LENGTH ? `${text.slice(0, MAX_PARAM_LENGTH)}…` : text;
}

/** pg's DatabaseError calls itself `error`; its class name says more. */
function errorType(error: unknown): string {
  const name = (error as Error)?.constructor?.name;
  return name && name !== 'Object' ? name : ((error as Error)?.name ?? 'Error');
}

/** The query span's name, per OTel database semconv: `{db.operation.name} {target}`. */
/**
 * The span name OpenTelemetry's database conventions ask for: `{db.query.summary}` when there is one
 * (`SELECT accounts`, `SELECT`), else the database name, else `postgresql`.
 */
export function querySpanName(query: NormalizedQuery, database: string | undefined): string {
  return query.summary ?? database ?? 'postgresql';
}

export function createQueryRecorder(
  config: Config,
  logger: PgsightLogger,
  normalize: (sql: string) => NormalizedQuery,
  instruments: QueryInstruments,
): QueryRecorder {
  const { slowQueryMs, logParams } = config;

  function recordMetric(
    client: ClientInfo,
    query: NormalizedQuery,
    seconds: number,
    sqlState: string | undefined,
    error: unknown,
  ) {
    const attributes: Attributes = {
      'db.system.name': 'postgresql',
      'db.namespace': namespaceOf(client),
      'server.address': client.host,
      'server.port': client.port,
      'db.operation.name': query.operation,
    };
    if (error) {
      attributes['error.type'] = sqlState ?? errorType(error);
      if (sqlState) attributes['db.response.status_code'] = sqlState;
    }
    instruments.duration?.record(seconds, attributes);
  }

  function finishSpan(
    span: Span,
    slow: boolean,
    sqlState: string | undefined,
    error: unknown,
    forensics?: Record<string, unknown> | undefined,
  ) {
    if (span.isRecording()) {
      if (slow) span.setAttribute('pgsight.slow', true);
      if (forensics) span.setAttributes(spanAttributes(forensics));
      if (error) {
        const type = sqlState ?? errorType(error);
        span.setAttribute('error.type', type);
        if (sqlState) span.setAttribute('db.response.status_code', sqlState);
        // The message can quote row values (`invalid input syntax ...: "secret"`); the span keeps the type only.
        span.setStatus({ code: SpanStatusCode.ERROR, message: `PostgreSQL error ${type}` });
      }
    }
    span.end();
  }

  function writeRecord(
    client: ClientInfo,
    query: NormalizedQuery,
    values: unknown,
    durationMs: number,
    sqlState: string | undefined,
    error: unknown,
    spanContext: SpanContext | undefined,
    /** How long the query's connection took to get from its pool (ms), read when it ended. */
    waited: number | undefined,
    forensics?: Record<string, unknown>,
    running = false,
  ) {
    const db: Record<string, unknown> = {
      system: { name: 'postgresql' },
      namespace: namespaceOf(client),
      operation: { name: query.operation },
      query: {
        text: query.text,
        fingerprint: query.fingerprint,
        ...(query.summary ? { summary: query.summary } : {}),
        ...(logParams && Array.isArray(values) ? { parameters: values.map(stringifyParam) } : {}),
        ...forensics,
      },
    };
    if (query.collection) db.collection = { name: query.collection };
    if (sqlState) db.response = { status_code: sqlState };
    if (waited !== undefined) db.client = { connection: { wait_ms: Math.round(waited * 1000) / 1000 } };
    const action = running ? 'db.query.running' : error ? 'db.query.error' : 'db.query.slow';
    const record: Record<string, unknown> = {
      event: dbEvent(action, running ? undefined : error ? 'failure' : 'success', durationMs),
      db,
      server: { address: client.host, port: client.port },
    };
    if (spanContext) {
      record.trace = { id: spanContext.traceId };
      record.span = { id: spanContext.spanId };
    }
    const ms = durationMs.toFixed(1);
    if (running) {
      logger.warn(record, `query still running after ${ms} ms: ${query.text}`);
    } else if (error) {
      const err = error as Error;
      // With parameters off, the values PostgreSQL quotes in its message are masked (they are the app's data).
      const message = logParams ? err.message : maskErrorValues(String(err.message));
      const stack = err.stack && !logParams ? err.stack.replace(String(err.message), message) : err.stack;
      record.error = {
        type: errorType(err),
        message,
        ...(sqlState ? { code: sqlState } : {}),
        ...(stack ? { stack_trace: stack } : {}),
      };
      // A failure the running transaction() answers by running again is expected contention, not an error:
      // warn, with the attempt it ended. The last attempt's failure (then retries_exhausted) is an error.
      const tx = (client as { [ACTIVE]?: Transaction })[ACTIVE];
      const retried = sqlState !== undefined && tx?.retriedOn?.has(sqlState) === true;
      const failed = `query failed${sqlState ? ` (${sqlState})` : ''} after ${ms} ms`;
      if (retried && tx) {
        record.db = { ...db, transaction: { name: tx.name, attempt: tx.attempt } };
        logger.warn(record, `${failed}, ${transactionLabel(tx.name)} runs again: ${query.text}`);
      } else logger.error(record, `${failed}: ${query.text}`);
    } else {
      // With PGSIGHT_SLOW_QUERY_MS=0 every query is recorded: it is a query, not a slow one (event.action stays).
      logger.warn(record, `${slowQueryMs === 0 ? 'query' : 'slow query'} (${ms} ms): ${query.text}`);
    }
  }

  return {
    running(entry, elapsedMs, forensics) {
      const own = entry.span?.spanContext();
      const spanContext = own && isSpanContextValid(own) ? own : undefined;
      const query = normalize(entry.text);
      inLogScope(entry.scope, () =>
        writeRecord(
          entry.client,
          query,
          entry.values,
          elapsedMs,
          undefined,
          undefined,
          spanContext,
          checkoutWaitMs(entry.client),
          forensics,
          true,
        ),
      );
    },
    end(client, text, values, durationMs, error, span, scope, inFlight) {
      const failed = error !== undefined && error !== null;
      const slow = durationMs >= slowQueryMs;
      const recording = span?.isRecording() === true;
      // Fast, successful, unobserved queries stop here: no normalization, no allocation.
      if (!failed && !slow && !recording && instruments.duration === undefined) {
        span?.end();
        return;
      }
      const query = normalize(text);
      const sqlState = failed ? sqlStateOf(error) : undefined;
      // The query's own span, recording or not (a propagation-only or unsampled span still has ids).
      const own = span?.spanContext();
      const spanContext = own && isSpanContextValid(own) ? own : trace.getActiveSpan()?.spanContext();
      // A slow or failed query's server-side facts (forensics.ts): its record waits for them; its span ends
      // now, with the sample when it is in (a span ended later could miss the exporter's last flush).
      const pending = failed || slow ? fieldsFor(inFlight, query, failed) : undefined;
      if (span) finishSpan(span, slow, sqlState, error, inFlight?.sampled);
      // How long this query's connection took to get from its pool (pool.query's own checkout, or the lease).
      const waited = failed || slow ? checkoutWaitMs(client) : undefined;
      if (instruments.duration) recordMetric(client, query, durationMs / 1000, sqlState, error);
      if (slow) {
        instruments.slowQueries?.add(1, {
          'db.namespace': namespaceOf(client),
          'db.operation.name': query.operation,
        });
      }
      if (pending !== undefined)
        holdRecord(
          pending.then((forensics) => {
            try {
              inLogScope(scope, () =>
                writeRecord(
                  client,
                  query,
                  values,
                  durationMs,
                  sqlState,
                  error,
                  spanContext,
                  waited,
                  forensics,
                ),
              );
            } catch {
              // never in the app's way
            }
          }),
        );
      else if (failed || slow)
        inLogScope(scope, () =>
          writeRecord(client, query, values, durationMs, sqlState, error, spanContext, waited),
        );
    },
  };
}
