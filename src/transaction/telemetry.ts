/**
 * Transaction telemetry: the span, the `db.transaction.*` records and the metrics. Works with and without
 * the preload: without a tracer or meter provider the OpenTelemetry API hands out no-ops.
 */
import {
  type Attributes,
  type Counter,
  createNoopMeter,
  type Histogram,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  type MeterProvider,
  metrics,
  ProxyTracerProvider,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import type { PgsightLogger } from '../ecs/ecs-logger.js';
import { counted, dbEvent, transactionLabel } from '../ecs/fields.js';
import { pgsightLogger } from '../ecs/pgsight-logger.js';

export type TransactionOutcome = 'committed' | 'rolled_back' | 'retries_exhausted' | 'unknown';

interface Instruments {
  provider: MeterProvider;
  /** The global meter provider is the API's no-op: nothing to count, no attributes to build. */
  noop: boolean;
  transactions: Counter;
  retries: Counter;
  duration: Histogram;
}

let instruments: Instruments | undefined;

/** Instruments of the current global meter provider (re-created if the provider changed). */
function meters(): Instruments {
  const provider = metrics.getMeterProvider();
  if (instruments?.provider === provider) return instruments;
  const meter = provider.getMeter('pgsight');
  const transactions = meter.createCounter('pgsight.db.transactions', {
    description: 'Outermost transactions, by outcome.',
    unit: '{transaction}',
  });
  instruments = {
    provider,
    noop: transactions === NOOP_COUNTER,
    transactions,
    retries: meter.createCounter('pgsight.db.transaction.retries', {
      description: 'Transaction attempts re-run, by the SQLSTATE that caused it.',
      unit: '{retry}',
    }),
    duration: meter.createHistogram('pgsight.db.transaction.duration', {
      description: 'Duration of outermost transactions, all attempts included.',
      unit: 's',
      advice: { explicitBucketBoundaries: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30] },
    }),
  };
  return instruments;
}

export interface TransactionInfo {
  name: string;
  isolationLevel: string | undefined;
  namespace: string | undefined;
  kind?: string;
  /** A two-phase transaction's global id (`db.transaction.global_id`). */
  globalId?: string;
}

/** The span of a transaction when no tracer provider is registered: shared, never ended, never read. */
export const NO_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
// The API's no-op meter hands out one shared counter: a provider whose counter is that one records nothing.
const NOOP_COUNTER = createNoopMeter().createCounter('pgsight.noop');

/**
 * What a transaction's telemetry needs to know, decided once per tracer provider, meter provider, logger and
 * log level, and looked up once per transaction (when it starts): pgsight's tracer, or undefined while no
 * tracer provider is registered (the transaction then skips its span altogether rather than pay for the
 * API's no-op), and whether a commit records anything at all (a metric or a debug record).
 */
interface TelemetryState {
  delegate: TracerProvider;
  meterProvider: MeterProvider;
  logger: PgsightLogger;
  levelVal: number;
  tracer: Tracer | undefined;
  /** No meter provider and debug records off: a commit without a span has nothing to record. */
  quietCommit: boolean;
}
let state: TelemetryState | undefined;

function telemetryState(): TelemetryState {
  const provider = trace.getTracerProvider();
  const delegate = provider instanceof ProxyTracerProvider ? provider.getDelegate() : provider;
  const meterProvider = metrics.getMeterProvider();
  const logger = pgsightLogger();
  const levelVal = logger.levelVal;
  if (
    state?.delegate === delegate &&
    state.meterProvider === meterProvider &&
    state.logger === logger &&
    state.levelVal === levelVal
  )
    return state;
  const registered = !(provider instanceof ProxyTracerProvider) || provider.getDelegateTracer('pgsight');
  state = {
    delegate,
    meterProvider,
    logger,
    levelVal,
    tracer: registered ? provider.getTracer('pgsight') : undefined,
    quietCommit: meters().noop && !logger.isLevelEnabled('debug'),
  };
  return state;
}

/** The transaction's span (NO_SPAN without a tracer provider); refreshes the telemetry state for its end. */
export function startTransactionSpan(info: TransactionInfo): Span {
  const tracer = telemetryState().tracer;
  if (!tracer) return NO_SPAN;
  return tracer.startSpan(`db.transaction ${info.name}`, {
    kind: SpanKind.INTERNAL,
    attributes: {
      'db.system.name': 'postgresql',
      ...(info.namespace ? { 'db.namespace': info.namespace } : {}),
      'db.transaction.name': info.name,
      ...(info.isolationLevel ? { 'db.transaction.isolation_level': info.isolationLevel } : {}),
      ...(info.kind ? { 'db.transaction.kind': info.kind } : {}),
      ...(info.globalId ? { 'db.transaction.global_id': info.globalId } : {}),
    },
  });
}

/** The fields every transaction record carries. */
export function transactionFields(info: TransactionInfo, attempt: number): Record<string, unknown> {
  return {
    db: {
      system: { name: 'postgresql' },
      ...(info.namespace ? { namespace: info.namespace } : {}),
      transaction: {
        name: info.name,
        attempt,
        ...(info.isolationLevel ? { isolation_level: info.isolationLevel } : {}),
        ...(info.kind ? { kind: info.kind } : {}),
        ...(info.globalId ? { global_id: info.globalId } : {}),
      },
    },
  };
}

function traceFields(span: Span | undefined): Record<string, unknown> {
  const ctx = span?.spanContext();
  return ctx && isSpanContextValid(ctx) ? { trace: { id: ctx.traceId }, span: { id: ctx.spanId } } : {};
}

export function recordRetry(
  info: TransactionInfo,
  span: Span,
  attempt: number,
  sqlState: string,
  delayMs: number,
): void {
  span.addEvent('db.transaction.retry', {
    'db.transaction.attempt': attempt,
    'db.response.status_code': sqlState,
    'db.transaction.retry_delay_ms': delayMs,
  });
  meters().retries.add(1, { 'db.response.status_code': sqlState, 'db.transaction.name': info.name });
  const fields = transactionFields(info, attempt);
  const db = fields.db as Record<string, Record<string, unknown>>;
  db.response = { status_code: sqlState };
  (db.transaction as Record<string, unknown>).retry_delay_ms = delayMs;
  pgsightLogger().warn(
    {
      ...fields,
      ...traceFields(span),
      event: dbEvent('db.transaction.retry'),
    },
    `${transactionLabel(info.name)} attempt ${attempt} failed with ${sqlState}; retrying in ${delayMs} ms`,
  );
}

export function recordSavepointRollback(span: Span | undefined, savepoint: string, error: unknown): void {
  span?.addEvent('db.transaction.savepoint_rollback', {
    'db.transaction.savepoint': savepoint,
    'error.type': (error as Error)?.constructor?.name ?? 'Error',
  });
}

export function recordEnd(
  info: TransactionInfo,
  span: Span,
  outcome: TransactionOutcome,
  attempt: number,
  startedAt: number,
  lastSqlState: string | undefined,
  error: unknown,
): void {
  // The common case, decided when the transaction started (startTransactionSpan): nothing to do.
  if (span === NO_SPAN && outcome === 'committed' && state?.quietCommit) return;
  if (span.isRecording()) {
    span.setAttributes({
      'db.transaction.outcome': outcome,
      'db.transaction.attempts': attempt,
      ...(lastSqlState ? { 'db.response.status_code': lastSqlState } : {}),
    });
    if (outcome !== 'committed')
      span.setStatus({ code: SpanStatusCode.ERROR, message: `transaction ${outcome}` });
  }
  const m = meters();
  const logger = pgsightLogger();
  const level = outcome === 'committed' ? 'debug' : 'info';
  const logged = logger.isLevelEnabled(level);
  if (m.noop && !logged) {
    span.end();
    return;
  }
  const durationMs = performance.now() - startedAt;
  if (!m.noop) {
    const attributes: Attributes = { 'db.transaction.outcome': outcome, 'db.transaction.name': info.name };
    m.transactions.add(1, attributes);
    m.duration.record(durationMs / 1000, attributes);
  }
  if (!logged) {
    span.end();
    return;
  }
  logger[level](
    transactionEndRecord(info, attempt, outcome, durationMs, span, lastSqlState, error),
    transactionEndMessage(info.name, outcome, attempt, durationMs),
  );
  span.end();
}

const EVENT_OUTCOME: Record<TransactionOutcome, 'success' | 'failure' | 'unknown'> = {
  committed: 'success',
  rolled_back: 'failure',
  retries_exhausted: 'failure',
  unknown: 'unknown',
};

/** The `db.transaction.end` record, for `transaction()` and for transactions written by hand alike. */
export function transactionEndRecord(
  info: TransactionInfo,
  attempt: number,
  outcome: TransactionOutcome,
  durationMs: number,
  span: Span | undefined,
  lastSqlState: string | undefined,
  error: unknown,
): Record<string, unknown> {
  const fields = transactionFields(info, attempt);
  const db = fields.db as Record<string, Record<string, unknown>>;
  (db.transaction as Record<string, unknown>).outcome = outcome;
  if (lastSqlState) db.response = { status_code: lastSqlState };
  const record: Record<string, unknown> = {
    ...fields,
    ...traceFields(span),
    event: dbEvent('db.transaction.end', EVENT_OUTCOME[outcome], durationMs),
  };
  if (error) {
    const err = error as Error & { code?: unknown };
    record.error = {
      type: err.constructor?.name ?? 'Error',
      message: err.message,
      ...(typeof err.code === 'string' ? { code: err.code } : {}),
    };
  }
  return record;
}

export function transactionEndMessage(
  name: string,
  outcome: TransactionOutcome,
  attempt: number,
  durationMs: number,
): string {
  return `${transactionLabel(name)} ${outcome.replace('_', ' ')} after ${counted(attempt, 'attempt')} in ${durationMs.toFixed(1)} ms`;
}
