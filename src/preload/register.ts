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
import module, { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import { type Config, otelExportsConfigured, processConfig } from '../config/env.js';

/**
 * The modules the instrumentations hook: pg and pg-pool, pino, and http / https when instrumentation-http runs
 * (telemetry exported; otherwise pgsight's propagation hook patches them in place, and an ESM wrapper would
 * keep the unpatched functions). With Node's synchronous in-thread hooks the loader is given them up front;
 * the off-thread loader learns them from the Hook() messages instead.
 */
function hookedModules(config: Config): string[] {
  if (config.otelDisabled) return ['pg', 'pg-pool'];
  return otelExportsConfigured(config)
    ? ['pg', 'pg-pool', 'pino', 'http', 'https']
    : ['pg', 'pg-pool', 'pino'];
}

async function start(): Promise<void> {
  const config = processConfig();
  if (config.disabled) return;
  // V8's compiled code for pgsight's and OpenTelemetry's modules, kept in Node's cache directory (or the one
  // NODE_COMPILE_CACHE names) across starts: most of a start is compiling them. A no-op when the app or the
  // environment enabled it already, or where the directory cannot be written.
  try {
    module.enableCompileCache?.();
  } catch {
    // an unwritable cache directory: start without it
  }
  // Loaded dynamically so that they are imported after the loader hook is in place.
  const sync = await import('import-in-the-middle/register-hooks.mjs');
  let acknowledged = async (): Promise<void> => {};
  if (sync.supportsSyncHooks()) {
    // In the app's thread (module.registerHooks): no loader thread to start, no message round trip per
    // module the app imports.
    sync.register({ include: hookedModules(config) });
  } else {
    // On a Node without it, the off-thread loader, which learns the hooked modules from messages.
    const { createAddHookMessageChannel } = await import('import-in-the-middle');
    const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
    register('./hook.js', import.meta.url, registerOptions);
    acknowledged = waitForAllMessagesAcknowledged;
  }
  const { startSidecar, checkPgPatched } = await import('./sidecar.js');
  await startSidecar({ config });
  await acknowledged();
  checkPgPatched();
}

if (isMainThread) {
  try {
    await start();
  } catch (error) {
    process.stderr.write(`pgsight: not started, the app runs uninstrumented: ${String(error)}\n`);
  }
}
