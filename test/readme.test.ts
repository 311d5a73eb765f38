// The README is part of the product: every variable pgsight reads and every error code must be in it.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configVariables } from '../src/config/env.js';
import { errorCodes } from '../src/errors.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it.each(configVariables)('documents %s', (variable) => {
    expect(readme).toMatch(new RegExp(`\\|\\s*\`${variable}\`\\s*\\|`));
  });

  it.each(Object.keys(errorCodes))('documents error code %s', (code) => {
    expect(readme).toMatch(new RegExp(`\\|\\s*\`${code}\`\\s*\\|`));
  });

  it('lists the package entry points', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      exports: Record<string, unknown>;
    };
    for (const entry of Object.keys(pkg.exports).filter(
      (e) => e !== './package.json' && e !== './hook.mjs',
    )) {
      expect(readme).toContain(`\`${entry === '.' ? 'pgsight' : `pgsight/${entry.slice(2)}`}\``);
    }
  });

  it('documents every command and npm script users run', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      bin: Record<string, string>;
      scripts: Record<string, string>;
    };
    for (const command of Object.keys(pkg.bin)) expect(readme).toContain(`npx ${command} setup`);
    for (const script of ['test', 'check', 'build', 'bench', 'dashboards'])
      expect(readme).toMatch(new RegExp(`npm run ${script}\\b|npm ${script}\\b`));
  });
});
