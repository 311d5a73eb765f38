// The layout stays readable: no source file of the library or the transport over 400 lines (the layer rule
// itself is biome's, in `npm run lint`).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { root } from './support/run-node.js';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sources(join(dir, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(dir, entry.name)]
        : [],
  );
}

it('no source file in src/ or transports/ is over 400 lines', () => {
  const long = [...sources(join(root, 'src')), ...sources(join(root, 'transports'))]
    .map((file) => [file.slice(root.length), readFileSync(file, 'utf8').split('\n').length] as const)
    .filter(([, lines]) => lines > 400);
  expect(long).toEqual([]);
});
