// The package's published types, checked as a user's TypeScript would use them (test/types/public-api.ts):
// the public API compiles, internals stay out of it, and every declaration file dist/ ships is valid.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { root } from './support/run-node.js';

it('compiles a user module against the published declarations, with internals hidden', () => {
  const tsc = spawnSync(
    process.execPath,
    [
      join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      join(root, 'test', 'types', 'tsconfig.json'),
    ],
    { cwd: root, encoding: 'utf8', timeout: 120_000 },
  );
  expect(tsc.stdout + tsc.stderr).toBe('');
  expect(tsc.status).toBe(0);
});
