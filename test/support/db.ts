// Where the tests connect: DATABASE_URL or the documented default, read through config.ts like everything else.
// Per-file schemas come from pgsight/testing's createTestSchema (src/testing/schema.ts).
import { loadConfig } from '../../src/config.js';

export const databaseUrl = loadConfig({ onProblem: () => {} }).databaseUrl;
