// For bench/ledger.mjs: pgsight started as the preload starts it, but with a span processor that drops every
// span, so spans are recorded for nobody (what the preload did before spans became propagation-only).
import { NoopSpanProcessor } from '@opentelemetry/sdk-trace';
import { startSidecar } from 'pgsight';

await startSidecar({ spanProcessors: [new NoopSpanProcessor()] });
