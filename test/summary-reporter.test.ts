// The closing line CI reads agrees with vitest's exit code: a file whose setup failed is failed, not skipped.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { root } from './support/run-node.js';

const dir = join(root, 'test', 'fixtures', 'reporter');

function runSuite(...files: string[]) {
  const run = spawnSync(
    process.execPath,
    [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...files],
    {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, CI: 'true', NO_COLOR: '1' },
      timeout: 60_000,
    },
  );
  const line = run.stdout.trim().split('\n').at(-1);
  return { code: run.status, line };
}

it('counts passed and skipped tests, and exits 0', () => {
  expect(runSuite('passing.check.ts')).toEqual({ code: 0, line: '1 passed, 0 failed, 1 skipped' });
});

it("counts each test of a file whose beforeAll threw as failed, and vitest's exit code agrees", () => {
  expect(runSuite('passing.check.ts', 'setup-fails.check.ts')).toEqual({
    code: 1,
    line: '1 passed, 2 failed, 1 skipped',
  });
});

it('counts a file that fails as it loads as one failure', () => {
  expect(runSuite('import-fails.check.ts')).toEqual({ code: 1, line: '0 passed, 1 failed, 0 skipped' });
});

it('a failing test fails the run with the embedded PostgreSQL started too (its exit hooks keep the exit code)', () => {
  expect(runSuite('--config', 'vitest.embedded.config.ts', 'wrong.check.ts')).toEqual({
    code: 1,
    line: '0 passed, 1 failed, 0 skipped',
  });
});
