/**
 * `node --import pgsight/register app.js`: instrument an unchanged app.
 *
 *   main thread ──register(hook.js)──▶ loader thread (import-in-the-middle, include-list mode)
 *        │                                   ▲
 *        └─ startSidecar(): instrumentations ┘ Hook(['pg', ...]) messages, acknowledged before app code runs
 *
 * Nothing happens inside worker threads (pino transports run there and inherit --import), nor when
 * PGSIGHT_DISABLED=true. Nothing here may throw into the app: a failure is reported once and the app runs on.
 */
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import { processConfig } from '../config/env.js';

async function start(): Promise<void> {
  const config = processConfig();
  if (config.disabled) return;
  // Loaded dynamically so that they are imported after the loader hook is in place.
  const { createAddHookMessageChannel } = await import('import-in-the-middle');
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  register('./hook.js', import.meta.url, registerOptions);
  const { startSidecar, checkPgPatched } = await import('./sidecar.js');
  await startSidecar({ config });
  await waitForAllMessagesAcknowledged();
  checkPgPatched();
}

if (isMainThread) {
  try {
    await start();
  } catch (error) {
    process.stderr.write(`pgsight: not started, the app runs uninstrumented: ${String(error)}\n`);
  }
}
