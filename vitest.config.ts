import ts from 'typescript';
import { defineConfig, type Plugin } from 'vitest/config';

/**
 * Vite's transformer (oxc) only knows legacy decorators. Test files that use pgsight's standard (TC39)
 * decorators are compiled by TypeScript itself first, exactly as `tsc` compiles a user's code.
 */
const standardDecorators: Plugin = {
  name: 'pgsight:standard-decorators',
  enforce: 'pre',
  transform(code, id) {
    if (!id.endsWith('.test.ts') || !/@(transactional|timed)\(/.test(code)) return undefined;
    const out = ts.transpileModule(code, {
      fileName: id,
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, sourceMap: true },
    });
    return { code: out.outputText, map: out.sourceMapText ?? null };
  },
};

export default defineConfig({
  plugins: [standardDecorators],
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Child processes and real PostgreSQL: two cores, so two files at a time.
    maxWorkers: 2,
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
