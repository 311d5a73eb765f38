// Run (c): pgsight started as the preload starts it, with every span sampled into the same discarding
// exporter the stock baseline uses.
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import { startSidecar } from 'pgsight';
import { discardExporter } from './discard-exporter.mjs';

await startSidecar({ spanProcessors: [new BatchSpanProcessor({ exporter: discardExporter })] });
