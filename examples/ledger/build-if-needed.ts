/**
 * Builds pgsight (tsc) when dist/ is missing or older than its sources: `npm run ledger` and `npm run demo`
 * run the ledger under `--import pgsight/register`, which loads dist/.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

export function buildIfNeeded(): void {
  let built = 0;
  try {
    built = statSync(join(root, 'dist', 'src', 'index.js')).mtimeMs;
  } catch {
    // not built yet
  }
  if (built >= Math.max(newest(join(root, 'src')), newest(join(root, 'transports')))) return;
  console.log('building pgsight (dist/ is missing or older than its sources)');
  const tsc = spawnSync(
    process.execPath,
    [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    { cwd: root, stdio: 'inherit' },
  );
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) buildIfNeeded();
