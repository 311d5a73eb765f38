// The app behaves exactly as without the preload: each behaviour through `--import pgsight/register` in a
// child process, compared with the same app run bare.
import { describe, expect, it } from 'vitest';
import { field, fixture, runNode } from './support/run-node.js';

/** Runs fidelity-app.mjs with SCENARIO, bare and under the preload; the JSON line each printed. */
async function bothWays(scenario: string, env: Record<string, string> = {}) {
  const run = (args?: string[]) =>
    runNode(fixture('fidelity-app.mjs'), { ...(args ? { args } : {}), env: { SCENARIO: scenario, ...env } });
  const [bare, preloaded] = await Promise.all([run([]), run()]);
  const printed = (stdout: string) =>
    JSON.parse(stdout.split('\n').find((l) => l.startsWith('{"scenario"')) ?? 'null') as Record<
      string,
      string
    >;
  return { bare, preloaded, bareOut: printed(bare.stdout), out: printed(preloaded.stdout) };
}

/** The `at async` frames of the app's own functions in a stack. */
const appFrames = (stack: string) =>
  stack
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('at async') && l.includes('fidelity-app.mjs'));

describe('identical behaviour under the preload', () => {
  it("async stack traces: a failing query's error keeps the app's own at-async frames (pg pool, client, kysely)", async () => {
    const { bareOut, out, preloaded } = await bothWays('stacks');
    expect(preloaded.code, preloaded.stderr).toBe(0);
    for (const via of ['pool', 'client', 'kysely']) {
      const frames = appFrames(out[via] ?? '');
      expect(frames.join('\n'), via).toMatch(/at async inner.*\n.*at async outer/i);
      expect(frames, via).toEqual(appFrames(bareOut[via] ?? ''));
    }
  });

  it('pg-cursor and pg-query-stream: timed (slow and failed records) and behaving as without the preload', async () => {
    const { bareOut, out, preloaded } = await bothWays('cursors', { PGSIGHT_SLOW_QUERY_MS: '150' });
    expect(preloaded.code, preloaded.stderr).toBe(0);
    expect(out).toEqual(bareOut);
    expect(out.failingCursor).toBe('error: division by zero');
    expect(out.failingStream).toBe('error: division by zero');
    // Sorted by action and text: a slow record waits for its plan, so the lines' order can differ from the
    // statements'.
    const key = (r: Record<string, unknown>) => `${field(r, 'event.action')} ${field(r, 'db.query.text')}`;
    const records = preloaded.records
      .filter((r) => String(field(r, 'event.action')).startsWith('db.query.'))
      .sort((x, y) => key(x).localeCompare(key(y)));
    const summary = records.map((r) => [field(r, 'event.action'), String(field(r, 'db.query.text'))]);
    expect(summary).toEqual([
      ['db.query.error', 'SELECT ? / ? AS cursor_fails'],
      ['db.query.error', 'SELECT ? / ? AS stream_fails'],
      ['db.query.slow', 'SELECT pg_sleep(?) AS cursor_sleep, g FROM generate_series(?, ?) g'],
      ['db.query.slow', 'SELECT pg_sleep(?) AS stream_sleep, g FROM generate_series(?, ?) g'],
    ]);
    expect(field(records[0], 'db.response.status_code')).toBe('22012');
    expect(field(records[2], 'event.duration')).toBeGreaterThanOrEqual(150_000_000);
  });

  it("an ORM's bulk inserts (drizzle: DEFAULT in every row) share one fingerprint whatever the row count", async () => {
    const run = await runNode(fixture('fidelity-app.mjs'), {
      env: { SCENARIO: 'orm', PGSIGHT_SLOW_QUERY_MS: '0' },
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('{"scenario":"orm","rows":8}');
    const inserts = run.records.filter((r) => field(r, 'db.operation.name') === 'INSERT');
    expect(inserts).toHaveLength(3);
    expect(new Set(inserts.map((r) => field(r, 'db.query.fingerprint'))).size).toBe(1);
    expect(field(inserts[2], 'db.query.text')).toBe(
      'INSERT INTO "orm_items"("id", "name", "at") VALUES (DEFAULT, $1, DEFAULT)',
    );
  });
});
