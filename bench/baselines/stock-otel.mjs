// Baseline (d): the stock OpenTelemetry Node SDK with @opentelemetry/instrumentation-pg at its defaults,
// every span sampled into an exporter that discards it: the getting-started setup, minus the network.
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import { discardExporter } from './discard-exporter.mjs';

new NodeSDK({
  spanProcessors: [new BatchSpanProcessor({ exporter: discardExporter })],
  metricReaders: [],
  logRecordProcessors: [],
  instrumentations: [new PgInstrumentation()],
}).start();
