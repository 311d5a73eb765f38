import { fileURLToPath } from 'node:url';

/**
 * The path pino's worker loads for pgsight/transport: `dist/transports/index.js` next to this module's built
 * copy (dist/src/log/ → dist/transports/). Under the test runner this module runs from src/, whose worker
 * could not load TypeScript, so it points at the built copy too (`npm test` builds first).
 */
export const TRANSPORT_TARGET = fileURLToPath(
  new URL(
    import.meta.url.endsWith('.ts') ? '../../dist/transports/index.js' : '../../transports/index.js',
    import.meta.url,
  ),
);
