/**
 * The OpenTelemetry SDK parts the preload starts with, re-exported from one module. `npm run build` bundles
 * this module's compiled file with esbuild (scripts/bundle-preload.ts): loaded as separate files, these
 * packages are about 200 modules, and resolving and evaluating them was most of a start's cost
 * (docs/benchmarks.md#start-up). The packages are bundled as published, nothing is rewritten; the bundle
 * leaves out what must stay one instance per process: `@opentelemetry/api` (the app's and pgsight's code
 * share its globals), pino, and import-in-the-middle (its loader hook and its Hook() calls meet in one
 * module). The OpenTelemetry parts loaded only when telemetry is exported (sdk-node, the HTTP and undici
 * instrumentations, the metrics SDK) are imported from node_modules as usual.
 */
export { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
export { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
export {
  type Instrumentation,
  type InstrumentationModuleFile,
  type InstrumentationNodeModuleDefinition,
  isWrapped,
  registerInstrumentations,
  type ShimWrapped,
} from '@opentelemetry/instrumentation';
export { PgInstrumentation, type PgInstrumentationConfig } from '@opentelemetry/instrumentation-pg';
export { PinoInstrumentation } from '@opentelemetry/instrumentation-pino';
export { resourceFromAttributes } from '@opentelemetry/resources';
export {
  AlwaysOffSampler,
  AlwaysOnSampler,
  type IdGenerator,
  ParentBasedSampler,
  RandomIdGenerator,
  type Sampler,
  SamplingDecision,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
