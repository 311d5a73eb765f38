/**
 * `npm run build`'s last step: replaces dist/src/preload/otel-vendor.js (re-exports of the OpenTelemetry
 * packages the preload starts with) by one esbuild bundle of those packages, so a start loads one file
 * instead of about 200 (src/preload/otel-vendor.ts says what stays outside and why).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';

const file = new URL('../dist/src/preload/otel-vendor.js', import.meta.url).pathname;

/** One instance per process each: shared with the app's code, or a loader hook's other half. */
const external = ['@opentelemetry/api', 'pino', 'import-in-the-middle'];

const result = await build({
  entryPoints: [file],
  outfile: file,
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  external,
  // The bundled packages are CommonJS and require() Node's built-ins and the external packages.
  banner: {
    js: "import { createRequire as pgsightCreateRequire } from 'node:module';\nconst require = pgsightCreateRequire(import.meta.url);",
  },
  legalComments: 'eof',
  metafile: true,
  logLevel: 'warning',
});
const inputs = Object.keys(result.metafile.inputs);
const own = inputs.filter((path) => !path.includes('node_modules/') && !path.endsWith('otel-vendor.js'));
if (own.length > 0)
  throw new Error(`bundle-preload: pgsight's own modules would be copied into the bundle: ${own.join(', ')}`);

// The packages' licences (Apache-2.0, MIT, ISC) ask for their notices to travel with copies of them.
const packages = new Map<string, string>();
for (const path of inputs) {
  const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(path);
  if (!match?.[1] || packages.has(match[1])) continue;
  const meta = JSON.parse(readFileSync(`${match[1]}/package.json`, 'utf8'));
  packages.set(match[1], `${meta.name}@${meta.version} (${meta.license})`);
}
const listed = [...new Set(packages.values())].sort().map((line) => ` *   ${line}`);
const notice = [
  '/*',
  " * This file bundles, unmodified, the following packages under their own licences (each package's",
  ' * LICENSE file in node_modules; OpenTelemetry: Copyright The OpenTelemetry Authors, Apache License 2.0):',
  ...listed,
  ' */',
  '',
].join('\n');
writeFileSync(file, notice + readFileSync(file, 'utf8'));
