/**
 * Installs the OpenTelemetry providers the sidecar needs, in one of two ways:
 *
 * - The environment names an exporter (`OTEL_*_EXPORTER`, `OTEL_EXPORTER_OTLP_*ENDPOINT`): the OpenTelemetry
 *   Node SDK (`@opentelemetry/sdk-node`) builds everything from `OTEL_*`, as it documents.
 * - Nothing is exported (the default, and when spans go to processors passed in code): the same core parts
 *   (tracer provider, AsyncLocalStorage context manager, W3C propagators) are composed directly; with no
 *   span processor either, the tracer provider is propagation-only (see propagation-tracer.ts). sdk-node
 *   loads every exporter it could build up front, about 15 MB of heap that an app exporting nothing would
 *   carry for good, and a larger heap measurably slows every query in bench/pg.mjs.
 */
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import type { MetricReader } from '@opentelemetry/sdk-metrics';
import { type Config, otelExportsConfigured, type SamplerChoice } from '../config/env.js';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  AsyncLocalStorageContextManager,
  CompositePropagator,
  type Instrumentation,
  ParentBasedSampler,
  registerInstrumentations,
  resourceFromAttributes,
  type Sampler,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from './otel-vendor.js';
import { PropagationTracerProvider } from './propagation-tracer.js';

/** pgsight's default for OTEL_EXPORTER_OTLP_TIMEOUT (ms), the bound on an exit's flush. */
export const EXPORT_TIMEOUT_MS = 2000;

export interface OtelSetup {
  /** True when a tracer provider is installed, so starting spans is worth it. */
  readonly tracing: boolean;
  forceFlush(): Promise<unknown>;
  shutdown(): Promise<unknown>;
}

export interface OtelSetupOptions {
  spanProcessors?: SpanProcessor[] | undefined;
  metricReaders?: MetricReader[] | undefined;
}

function samplerFor(choice: SamplerChoice): Sampler {
  const root = choice.name.endsWith('always_off')
    ? new AlwaysOffSampler()
    : choice.name.endsWith('traceidratio')
      ? new TraceIdRatioBasedSampler(choice.ratio)
      : new AlwaysOnSampler();
  return choice.name.startsWith('parentbased_') ? new ParentBasedSampler({ root }) : root;
}

function resourceFor(config: Config) {
  const { service } = config;
  return resourceFromAttributes({
    'service.name': service.name,
    ...(service.version ? { 'service.version': service.version } : {}),
    ...(service.environment ? { 'deployment.environment.name': service.environment } : {}),
    'process.pid': process.pid,
    'process.runtime.name': 'nodejs',
    'process.runtime.version': process.versions.node,
  });
}

async function composeCore(
  config: Config,
  instrumentations: Instrumentation[],
  options: OtelSetupOptions,
): Promise<OtelSetup> {
  const resource = resourceFor(config);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
  // Nothing consumes spans: they carry ids and sampling decisions (logs correlate, traceparent propagates)
  // but record nothing (propagation-tracer.ts). Span processors passed in code get recorded spans.
  const sampler = samplerFor(config.sampler);
  const tracerProvider = options.spanProcessors
    ? new TracerProvider({ resource, sampler, spanProcessors: options.spanProcessors })
    : new PropagationTracerProvider(sampler);
  trace.setGlobalTracerProvider(tracerProvider);
  const readers = options.metricReaders ?? [];
  // The metrics SDK is loaded only for readers passed in code: a start without them does not pay for it.
  const meterProvider =
    readers.length > 0
      ? new (await import('@opentelemetry/sdk-metrics')).MeterProvider({ resource, readers })
      : undefined;
  if (meterProvider) metrics.setGlobalMeterProvider(meterProvider);
  registerInstrumentations({ instrumentations, tracerProvider, ...(meterProvider ? { meterProvider } : {}) });
  return {
    tracing: true,
    forceFlush: () =>
      Promise.all([
        tracerProvider instanceof TracerProvider ? tracerProvider.forceFlush() : undefined,
        meterProvider?.forceFlush(),
      ]),
    shutdown: () =>
      Promise.all([
        tracerProvider instanceof TracerProvider ? tracerProvider.shutdown() : undefined,
        meterProvider?.shutdown(),
      ]),
  };
}

async function startNodeSdk(
  config: Config,
  instrumentations: Instrumentation[],
  options: OtelSetupOptions,
): Promise<OtelSetup> {
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  // The SDK builds its exporters (which read OTEL_EXPORTER_OTLP_TIMEOUT) in its constructor and start.
  // pgsight's default is the exit bound (the SDK's is 10 s): an exit, or any export, waits no longer on a
  // collector that does not answer. The variable is set for those two calls only, before the app runs.
  const unset = process.env.OTEL_EXPORTER_OTLP_TIMEOUT === undefined;
  if (unset) process.env.OTEL_EXPORTER_OTLP_TIMEOUT = String(EXPORT_TIMEOUT_MS);
  let sdk: InstanceType<typeof NodeSDK>;
  try {
    sdk = new NodeSDK({
      serviceName: config.service.name,
      instrumentations,
      ...(options.spanProcessors ? { spanProcessors: options.spanProcessors } : {}),
      ...(options.metricReaders
        ? { metricReaders: options.metricReaders }
        : config.exporters.metrics
          ? {}
          : { metricReaders: [] }),
      ...(config.exporters.logs ? {} : { logRecordProcessors: [] }),
    });
    sdk.start();
  } finally {
    if (unset) delete process.env.OTEL_EXPORTER_OTLP_TIMEOUT;
  }
  // Installed unless OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true.
  type Flushable = { forceFlush?: () => Promise<void> };
  const tracerProvider = (trace.getTracerProvider() as unknown as { getDelegate(): Flushable }).getDelegate();
  const meterProvider = metrics.getMeterProvider() as Flushable;
  return {
    tracing: typeof tracerProvider.forceFlush === 'function',
    forceFlush: () => Promise.all([tracerProvider.forceFlush?.(), meterProvider.forceFlush?.()]),
    shutdown: () => sdk.shutdown(),
  };
}

export async function setupOpenTelemetry(
  config: Config,
  instrumentations: Instrumentation[],
  options: OtelSetupOptions,
): Promise<OtelSetup> {
  if (config.otelDisabled) {
    // OpenTelemetry's OTEL_SDK_DISABLED: no provider, no context manager, no propagator; the API stays the
    // no-op it is without an SDK. The instrumentations still patch (pgsight's records come from pg's).
    registerInstrumentations({ instrumentations });
    return { tracing: false, forceFlush: async () => undefined, shutdown: async () => undefined };
  }
  return otelExportsConfigured(config)
    ? startNodeSdk(config, instrumentations, options)
    : composeCore(config, instrumentations, options);
}
