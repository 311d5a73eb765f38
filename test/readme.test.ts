// The README and docs/ are part of the product: every variable pgsight reads and every error code is in the
// README's tables, every option in the guides, and every relative link points at a file and heading that exist.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configVariables } from '../src/config/env.js';
import { errorCodes } from '../src/errors.js';
import { transactionOptionNames } from '../src/transaction/options.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const docsDir = new URL('../docs/', import.meta.url);
const guides = Object.fromEntries(
  readdirSync(docsDir)
    .filter((f) => f.endsWith('.md'))
    .map((f) => [`docs/${f}`, readFileSync(new URL(f, docsDir), 'utf8')]),
);
const everything = [readme, ...Object.values(guides)].join('\n');

/** GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens. */
const anchorsOf = (markdown: string) =>
  new Set(
    [...markdown.matchAll(/^#+ (.+)$/gm)].map((m) =>
      (m[1] as string)
        .toLowerCase()
        .replace(/[^a-z0-9 _-]/g, '')
        .replace(/ /g, '-'),
    ),
  );

describe('README', () => {
  it.each(configVariables)('documents %s', (variable) => {
    expect(readme).toMatch(new RegExp(`\\|\\s*\`${variable}\`\\s*\\|`));
  });

  it.each(Object.keys(errorCodes))('documents error code %s', (code) => {
    expect(readme).toMatch(new RegExp(`\\|\\s*\`${code}\`\\s*\\|`));
  });

  it.each(transactionOptionNames)('documents the transaction option %s', (option) => {
    expect(guides['docs/transactions.md']).toContain(`\`${option}\``);
  });

  it('has no link to a file or heading that does not exist', () => {
    const files: Record<string, string> = { 'README.md': readme, ...guides };
    const broken: string[] = [];
    for (const [file, text] of Object.entries(files))
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target as string)) continue; // http(s), mailto
        const [path, anchor] = (target as string).split('#');
        const base = file.includes('/') ? 'docs/' : '';
        const resolved = path
          ? new URL(path, new URL(`../${base}`, import.meta.url))
          : new URL(`../${file}`, import.meta.url);
        if (!existsSync(resolved)) broken.push(`${file}: ${target}`);
        else if (
          anchor &&
          resolved.pathname.endsWith('.md') &&
          !anchorsOf(readFileSync(resolved, 'utf8')).has(anchor)
        )
          broken.push(`${file}: ${target}`);
      }
    expect(broken).toEqual([]);
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
      expect(everything).toMatch(new RegExp(`npm run ${script}\\b|npm ${script}\\b`));
  });
});
