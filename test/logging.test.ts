// The logging toolkit: context propagation, request logging against a real HTTP server, timed, errors,
// the development profile and the process hooks (as child processes, as users run them).
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { bindLogContext, getLogContext, withLogContext } from '../src/ecs/log-context.js';
import { createLogger } from '../src/log/create-logger.js';
import { logError } from '../src/log/error.js';
import { fastifyRequestId, fastifyRequestLogging, requestLogging } from '../src/log/request-logging.js';
import { timed } from '../src/log/timed.js';
import { field, fixture, runNode } from './support/run-node.js';

/** A production-profile logger writing ECS lines to a fresh file, and a reader that waits for `n` lines. */
function fileLogger(extra: Parameters<typeof createLogger>[0] = {}) {
  const path = join(mkdtempSync(join(tmpdir(), 'pgsight-log-')), 'app.ndjson');
  const logger = createLogger({
    environment: 'production',
    outputs: [{ type: 'file', path }],
    level: 'debug',
    ...extra,
  });
  const lines = async (n: number) => {
    for (let i = 0; i < 200; i++) {
      logger.flush();
      if (existsSync(path)) {
        const found = readFileSync(path, 'utf8').trim().split('\n').filter(Boolean);
        if (found.length >= n) return found.map((l) => JSON.parse(l) as Record<string, unknown>);
      }
      await sleep(25);
    }
    throw new Error(`fewer than ${n} lines in ${path}`);
  };
  return { logger, lines };
}

describe('log context', () => {
  it('survives await, timers, Promise.all fan-out and event emitters; inner bindings win', async () => {
    const seen: Record<string, unknown>[] = [];
    const emitter = new EventEmitter();
    emitter.on('done', () => seen.push({ ...getLogContext(), via: 'emitter' }));
    await withLogContext({ request: 'r1', user: 'a' }, async () => {
      await sleep(5);
      seen.push({ ...getLogContext(), via: 'await' });
      await new Promise<void>((resolve) =>
        setTimeout(() => {
          seen.push({ ...getLogContext(), via: 'timer' });
          emitter.emit('done');
          resolve();
        }, 5),
      );
      await Promise.all(
        [1, 2, 3].map((n) =>
          withLogContext({ user: `inner-${n}` }, async () => {
            await sleep(n);
            seen.push({ ...getLogContext(), via: `fan-${n}` });
          }),
        ),
      );
      bindLogContext({ step: 'bound' });
      await sleep(1);
      seen.push({ ...getLogContext(), via: 'bound' });
    });
    expect(getLogContext()).toEqual({});
    expect(seen).toEqual([
      { request: 'r1', user: 'a', via: 'await' },
      { request: 'r1', user: 'a', via: 'timer' },
      { request: 'r1', user: 'a', via: 'emitter' },
      { request: 'r1', user: 'inner-1', via: 'fan-1' },
      { request: 'r1', user: 'inner-2', via: 'fan-2' },
      { request: 'r1', user: 'inner-3', via: 'fan-3' },
      { request: 'r1', user: 'a', step: 'bound', via: 'bound' },
    ]);
  });

  it('records logged inside carry the fields, nested and by every logger createLogger made', async () => {
    const { logger, lines } = fileLogger();
    const child = logger.child({ component: 'billing' });
    logger.info('outside');
    await withLogContext({ 'http.request.id': 'req-1', tenant: 't1' }, async () => {
      await sleep(1);
      logger.info('inside');
      child.info({ tenant: 'explicit' }, 'child inside');
    });
    const [outside, inside, childInside] = await lines(3);
    expect(outside).not.toHaveProperty('tenant');
    expect(inside).toMatchObject({ message: 'inside', tenant: 't1', http: { request: { id: 'req-1' } } });
    expect(childInside).toMatchObject({
      component: 'billing',
      tenant: 'explicit',
      http: { request: { id: 'req-1' } },
    });
  });

  it("pgsight's own slow-query records carry the context (the request id)", async () => {
    const run = await runNode(fixture('logging-app.mjs'), {
      env: { SCENARIO: 'slow-query-context', PGSIGHT_SLOW_QUERY_MS: '0' },
    });
    const record = run.records.find((r) => String(field(r, 'db.query.text')).includes('in_context'));
    expect(field(record, 'http.request.id')).toBe('req-9');
  });

  it("names the right request when a pooled query waited for another request's connection, and in watchdog records", async () => {
    const run = await runNode(fixture('logging-app.mjs'), {
      env: { SCENARIO: 'pool-wait-context', PGSIGHT_SLOW_QUERY_MS: '0', PGSIGHT_TX_IDLE_MS: '50' },
    });
    expect(run.code, run.stderr).toBe(0);
    const asked = run.records
      .filter((r) => String(field(r, 'db.query.text')).includes('asked_by'))
      .map((r) => field(r, 'http.request.id'));
    expect(asked.sort()).toEqual(['req-a', 'req-b', 'req-c']);
    const idle = run.records.find((r) => field(r, 'event.action') === 'db.transaction.idle');
    expect(field(idle ?? {}, 'http.request.id')).toBe('req-idle');
  });
});

describe('request logging (node:http)', () => {
  async function serve() {
    const { logger, lines } = fileLogger();
    const handler = requestLogging({
      logger,
      route: (req) => (req.url?.startsWith('/accounts/') ? '/accounts/:id' : undefined),
    })(async (req, res) => {
      const url = req.url ?? '/';
      if (url === '/boom') throw new Error('database exploded: password=hunter2');
      await sleep(Number(new URL(url, 'http://x').searchParams.get('delay') ?? 0));
      logger.info({ tag: new URL(url, 'http://x').searchParams.get('tag') }, 'handling');
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    return { base, lines, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }

  it('honours a valid x-request-id, generates one otherwise, echoes it, and writes one completion record', async () => {
    const { base, lines, close } = await serve();
    const given = await fetch(`${base}/accounts/7?tag=a`, {
      headers: { 'x-request-id': 'req-abc', 'user-agent': 'test-agent/1' },
    });
    const generated = await fetch(`${base}/accounts/8?tag=b`, {
      headers: { 'x-request-id': 'bad id with spaces' },
    });
    expect(given.headers.get('x-request-id')).toBe('req-abc');
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const records = await lines(4);
    await close();
    const completions = records.filter((r) => r.message === 'request completed');
    expect(completions).toHaveLength(2);
    expect(completions[0]).toMatchObject({
      'log.level': 'info',
      http: {
        request: { id: 'req-abc', method: 'GET' },
        response: { status_code: 200, body: { bytes: 11 } },
        route: '/accounts/:id',
      },
      url: { path: '/accounts/7' },
      client: { ip: '127.0.0.1' },
      user_agent: { original: 'test-agent/1' },
    });
    expect(typeof field(completions[0], 'event.duration')).toBe('number');
    // The handler's own record carries the request id too.
    expect(records.find((r) => r.tag === 'a')).toMatchObject({ http: { request: { id: 'req-abc' } } });
    expect(records.find((r) => r.tag === 'b')).toMatchObject({
      http: { request: { id: generated.headers.get('x-request-id') } },
    });
  });

  it('parallel requests never see each other’s context', async () => {
    const { base, lines, close } = await serve();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        fetch(`${base}/work?tag=t${i}&delay=${(i * 7) % 20}`, { headers: { 'x-request-id': `req-${i}` } }),
      ),
    );
    const records = await lines(40);
    await close();
    for (const record of records.filter((r) => typeof r.tag === 'string')) {
      expect(field(record, 'http.request.id')).toBe(`req-${String(record.tag).slice(1)}`);
    }
  });

  it('a failing handler: generic 500 body, one error record with ECS error fields (redacted)', async () => {
    const { base, lines, close } = await serve();
    const response = await fetch(`${base}/boom`);
    expect(response.status).toBe(500);
    expect(await response.text()).toBe('{"error":"internal server error"}');
    const [record] = await lines(1);
    await close();
    expect(record).toMatchObject({
      'log.level': 'error',
      http: { response: { status_code: 500 } },
      error: { type: 'Error' },
    });
    expect(String(field(record, 'error.message'))).toBe('database exploded: password=[REDACTED]');
  });

  it('excluded health-check paths get no record', async () => {
    const { base, lines, close } = await serve();
    await fetch(`${base}/healthz`);
    await fetch(`${base}/accounts/1?tag=x`);
    const records = await lines(2);
    await close();
    expect(records.some((r) => field(r, 'url.path') === '/healthz')).toBe(false);
  });
});

describe('request logging under the preload', () => {
  it('binds the trace id of the request span next to the request id', async () => {
    const run = await runNode(fixture('request-app.mjs'));
    const inHandler = run.records.find((r) => r.message === 'in handler');
    const completed = run.records.find((r) => r.message === 'request completed');
    expect(field(inHandler, 'trace.id')).toMatch(/^[0-9a-f]{32}$/);
    expect(inHandler).toMatchObject({ http: { request: { id: 'req-traced' } } });
    expect(field(completed, 'http.request.id')).toBe('req-traced');
  });
});

describe('fastify plugin', () => {
  it('echoes the request id and binds it for the handler’s records; fastify logs the completion', async () => {
    const { logger, lines } = fileLogger();
    const app = Fastify({ loggerInstance: logger, genReqId: fastifyRequestId() });
    await app.register(fastifyRequestLogging, {});
    app.get('/orders', async (request) => {
      request.log.info('listing orders');
      logger.info('plain logger inside');
      return { ok: true };
    });
    const response = await app.inject({
      method: 'GET',
      url: '/orders',
      headers: { 'x-request-id': 'req-fastify' },
    });
    expect(response.headers['x-request-id']).toBe('req-fastify');
    const records = await lines(4);
    await app.close();
    expect(records.find((r) => r.message === 'plain logger inside')).toMatchObject({
      http: { request: { id: 'req-fastify' } },
    });
    expect(records.find((r) => r.message === 'request completed')).toMatchObject({
      http: { response: { status_code: 200 } },
    });
  });
});

describe('timed', () => {
  it('logs sync, async, throwing and rejecting functions, returning and rethrowing unchanged', async () => {
    const { logger, lines } = fileLogger();
    const thrown = new TypeError('bad input');
    expect(timed('sync', () => 42, { logger })).toBe(42);
    await expect(timed('async', async () => 'value', { logger })).resolves.toBe('value');
    expect(() =>
      timed(
        'throws',
        () => {
          throw thrown;
        },
        { logger },
      ),
    ).toThrow(thrown);
    const rejection = new RangeError('out of range');
    await expect(timed('rejects', () => Promise.reject(rejection), { logger })).rejects.toBe(rejection);
    timed('fast', () => 1, { logger, thresholdMs: 10_000 }); // under the threshold: no record
    class Reports {
      @timed('reports.daily', { logger })
      async daily(n: number): Promise<number> {
        await sleep(1);
        return n * 2;
      }
    }
    await expect(new Reports().daily(21)).resolves.toBe(42);
    const records = await lines(5);
    expect(
      records.map((r) => [
        field(r, 'event.action'),
        r.message,
        field(r, 'event.outcome'),
        field(r, 'error.type'),
      ]),
    ).toEqual([
      ['sync', 'operation completed', 'success', undefined],
      ['async', 'operation completed', 'success', undefined],
      ['throws', 'operation failed', 'failure', 'TypeError'],
      ['rejects', 'operation failed', 'failure', 'RangeError'],
      ['reports.daily', 'operation completed', 'success', undefined],
    ]);
    expect(records.every((r) => typeof field(r, 'event.duration') === 'number')).toBe(true);
  });
});

describe('errors', () => {
  it('logError writes ECS error fields with the cause chain, the code and the SQLSTATE', async () => {
    const { logger, lines } = fileLogger();
    const pgError = Object.assign(new Error('could not serialize access'), { code: '40001' });
    logError(new Error('transfer failed', { cause: pgError }), { transfer: { id: 9 } }, logger);
    const [record] = await lines(1);
    expect(record).toMatchObject({
      'log.level': 'error',
      transfer: { id: 9 },
      error: { type: 'Error', message: 'transfer failed: could not serialize access', code: '40001' },
      db: { response: { status_code: '40001' } },
    });
    expect(String(field(record, 'error.stack_trace'))).toMatch(
      /caused by: Error: could not serialize access/,
    );
  });

  it('the uncaught-exception hook logs it and the process still exits non-zero', async () => {
    const run = await runNode(fixture('logging-app.mjs'), {
      args: [],
      env: { SCENARIO: 'uncaught', NODE_ENV: 'production' },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('boom at the top'); // Node's own report is unchanged
    const record = run.records.find((r) => field(r, 'event.action') === 'process.uncaught_exception');
    expect(record).toMatchObject({
      'log.level': 'fatal',
      error: { type: 'Error', code: 'E_TOP', message: 'boom at the top: root cause' },
    });
  });

  it.each([
    ['an Error', 'error', 'nobody caught me', []],
    ['a string', 'string', 'a bare string', []],
    ['an Error, --unhandled-rejections=warn', 'error', 'nobody caught me', ['--unhandled-rejections=warn']],
  ])(
    'an unhandled rejection of %s is logged; Node reports it as without the hooks (first frame, message, exit code)',
    async (_name, reason, message, flags) => {
      const run = (hooks: boolean) =>
        runNode(fixture('logging-app.mjs'), {
          args: flags,
          env: { SCENARIO: 'rejection', REASON: reason, HOOKS: String(hooks) },
        });
      const [bare, hooked] = await Promise.all([run(false), run(true)]);
      expect(hooked.code).toBe(bare.code);
      expect(bare.code).toBe(flags.length ? 0 : 1);
      // Node's report: the same lines, the app's own location first (logging-app.mjs, not a pgsight file).
      const report = (stderr: string) => stderr.replace(/^\(node:\d+\)/gm, '(node)').split('\n');
      expect(report(hooked.stderr)).toEqual(report(bare.stderr));
      expect(hooked.stderr).not.toContain('dist/src');
      // An Error's report starts at the line that made it; a bare reason's at Node's own wrapper.
      if (!flags.length)
        expect(hooked.stderr.split('\n')[0]).toMatch(
          reason === 'error' ? /logging-app\.mjs:\d+$/ : /^node:internal/,
        );
      expect(
        hooked.records.find((r) => field(r, 'event.action') === 'process.unhandled_rejection'),
      ).toMatchObject({
        error: { message: expect.stringContaining(message) },
        'log.level': flags.length ? 'error' : 'fatal',
      });
    },
  );
});

describe('development profile', () => {
  it('prints readable lines, redacted', async () => {
    const run = await runNode(fixture('logging-app.mjs'), { args: [], env: { SCENARIO: 'development' } });
    expect(run.stdout).toMatch(/INFO.*login with Bearer \[REDACTED\]/);
    expect(run.stdout).toContain('"[REDACTED]"');
    expect(run.stdout).not.toContain('hunter2-dev');
    expect(run.stdout).not.toContain('dev-secret-token');
    expect(run.stdout.trim().startsWith('{')).toBe(false);
  });
});
