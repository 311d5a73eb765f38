// The development console, read the way a developer reads it: in a pseudo-terminal (`script` gives the app
// a TTY, as a terminal does), with colours, and what a reader sees once the colour codes are taken out.
import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { databaseUrl } from './support/db.js';
import { fixture, nodeFlags, root, runNode } from './support/run-node.js';

const ANSI = /\x1b\[[0-9;]*m/g;

function inTerminal(script: string): string {
  const command = [process.execPath, ...nodeFlags, '--import', 'pgsight/register', script]
    .map((a) => `'${a}'`)
    .join(' ');
  const run = spawnSync('script', ['-qfec', command, '/dev/null'], {
    cwd: root,
    encoding: 'utf8',
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PGSIGHT_SLOW_QUERY_MS: '50',
      PGSIGHT_LOG_LEVEL: 'debug',
      NODE_ENV: 'development',
    },
    timeout: 30_000,
  });
  return run.stdout;
}

it("in a terminal: one readable line per record, pgsight's own included, with colours", () => {
  const out = inTerminal(fixture('dev-console.mjs'));
  expect(out).toMatch(ANSI); // coloured
  const text = out.replace(ANSI, '').replace(/\r/g, '');
  const lines = text.split('\n');
  const line = (text: string) => lines.find((l) => l.includes(text)) ?? '';
  // A request: method, path, status, duration, request id, on one line.
  expect(line('POST /transfers')).toMatch(
    /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: POST \/transfers 201 12\.5 ms \(req-1\)$/,
  );
  // pgsight's slow query: its message, then the fields that matter, on one line; no raw ECS JSON anywhere.
  expect(line('slow query')).toMatch(
    /WARN: slow query \([\d.]+ ms\): SELECT pg_sleep\(\?\) \{"duration":"[\d.]+ ms","fingerprint":"[0-9a-f]{16}"\}/,
  );
  expect(line('transaction rolled back')).toMatch(
    /INFO: transaction rolled back after 1 attempt in [\d.]+ ms/,
  );
  expect(text).not.toContain('"ecs.version"');
  // An error's stack on its own lines, not one escaped string.
  const at = lines.findIndex((l) => l.includes('ERROR: it failed'));
  expect(lines.slice(at, at + 12).some((l) => /^ {4}Error: boom$/.test(l))).toBe(true);
  expect(lines.slice(at, at + 12).some((l) => /^ {8}at .*dev-console\.mjs/.test(l))).toBe(true);
  expect(text).not.toContain('stack_trace');
  // A field the app logged under an ECS name reads as it was logged.
  expect(text).toContain('user: "alice"');
  expect(text).not.toContain('pino:');
});

it("piped (no terminal): no colour, and pgsight's records stay ECS JSON for machines", async () => {
  const run = await runNode(fixture('dev-console.mjs'), {
    env: { PGSIGHT_SLOW_QUERY_MS: '50', NODE_ENV: 'development' },
  });
  expect(run.code).toBe(0);
  expect(run.stdout).not.toMatch(ANSI);
  expect(run.stdout).toContain('INFO: POST /transfers 201 12.5 ms (req-1)');
  expect(run.records.some((r) => (r.event as Record<string, unknown>)?.action === 'db.query.slow')).toBe(
    true,
  );
});
