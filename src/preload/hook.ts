// The module-loader hook that node:module's register() runs off-thread. Re-exported, not copied, so that the
// one import-in-the-middle install shared with @opentelemetry/instrumentation receives the hook messages.
export { initialize, load, resolve } from 'import-in-the-middle/hook.mjs';
