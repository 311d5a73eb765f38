// Baseline for `npm run bench:startup`: the stock OpenTelemetry Node SDK with @opentelemetry/instrumentation-pg
// alone, started as a preload (`node --import`), with its ESM hook, as the getting-started guide sets it up.
import { register } from 'node:module';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { NodeSDK } from '@opentelemetry/sdk-node';

register('import-in-the-middle/hook.mjs', import.meta.url);
new NodeSDK({ instrumentations: [new PgInstrumentation()] }).start();
