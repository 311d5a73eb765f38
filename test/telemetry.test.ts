// What the preload exports, read back through a local OTLP receiver, and how it behaves at exit.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { normalizeQuery } from '../src/pg/normalize.js';
import { databasePort } from './support/db.js';
import { useOtlpReceiver } from './support/otlp-receiver.js';
import { field, fixture, root, runNode } from './support/run-node.js';
import { SilentServer } from './support/silent-server.js';

const otlpReceiver = useOtlpReceiver({ beforeEach, afterEach });

const otlp = () => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: otlpReceiver.endpoint,
  OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
  OTEL_SERVICE_NAME: 'fixture-app',
  // Long enough that only the flush at exit can deliver the spans.
  OTEL_BSP_SCHEDULE_DELAY: '60000',
  OTEL_METRIC_EXPORT_INTERVAL: '60000',
  PGSIGHT_SLOW_QUERY_MS: '150',
});

/** Start the fixture, send `signal` once it prints "ready", and collect how it ended. */
function runUntilReady(env: Record<string, string>, signal: NodeJS.Signals = 'SIGTERM') {
  let signalledAt = 0;
  return runNode(fixture('slow-then-wait.mjs'), {
    env,
    onLine: (line, child) => {
      if (line === 'ready') {
        signalledAt = Date.now();
        child.kill(signal);
      }
    },
  }).then((run) => ({ ...run, exitMs: Date.now() - signalledAt }));
}

describe('spans and metrics', () => {
  it('exports query spans with the fingerprint, the slow flag and the SQLSTATE of a promise-style failure', async () => {
    const run = await runUntilReady(otlp());
    expect(run.stderr).toBe('');
    const queries = otlpReceiver.receiver.spans.filter(
      (s) => s.attributes['db.system.name'] === 'postgresql',
    );
    const slow = queries.find((s) => String(s.attributes['db.query.text']).includes('waited'));
    expect(slow).toMatchObject({
      name: 'SELECT', // {db.query.summary}: no table in this statement
      kind: 3, // CLIENT
      attributes: {
        'db.namespace': 'test',
        'db.operation.name': 'SELECT',
        'db.query.text': 'SELECT pg_sleep($1) AS waited',
        'pgsight.query.fingerprint': normalizeQuery('SELECT pg_sleep($1) AS waited').fingerprint,
        'pgsight.slow': true,
        'server.address': '127.0.0.1',
        'server.port': databasePort,
      },
    });
    const failed = queries.find((s) => s.attributes['db.collection.name'] === 'missing_table');
    expect(failed).toMatchObject({
      name: 'SELECT missing_table',
      status: { code: 2 },
      attributes: {
        'db.response.status_code': '42P01',
        'error.type': '42P01',
        'db.query.summary': 'SELECT missing_table',
      },
    });
    expect(failed?.attributes['pgsight.slow']).toBeUndefined();
    // The slow-query record names the span it belongs to.
    const record = run.records.find((r) => field(r, 'event.action') === 'db.query.slow');
    expect(field(record ?? {}, 'trace.id')).toBe(slow?.traceId);
    expect(field(record ?? {}, 'span.id')).toBe(slow?.spanId);
    expect(field(record ?? {}, 'service.name')).toBe('fixture-app');
  });

  it('exports the duration histogram with the SQLSTATE, and the slow-query counter', async () => {
    await runUntilReady({ ...otlp(), OTEL_TRACES_EXPORTER: 'none' });
    const durations = otlpReceiver.receiver.points.filter((p) => p.metric === 'db.client.operation.duration');
    expect(durations.length).toBeGreaterThan(0);
    expect(durations.find((p) => p.attributes['error.type'] === '42P01')?.attributes).toMatchObject({
      'db.response.status_code': '42P01',
      'db.system.name': 'postgresql',
      'db.namespace': 'test',
    });
    const slow = otlpReceiver.receiver.points.filter((p) => p.metric === 'pgsight.db.slow_queries');
    expect(slow.reduce((n, p) => n + p.value, 0)).toBe(1);
  });
});

describe('exit', () => {
  it('on SIGTERM with no app handler: flushes the spans, then exits by the signal, promptly', async () => {
    const run = await runUntilReady(otlp());
    expect(run.signal).toBe('SIGTERM');
    expect(run.exitMs).toBeLessThan(5_000); // bounded by pgsight's 2 s flush timeout, not by the app
    expect(otlpReceiver.receiver.spans.some((s) => s.attributes['pgsight.slow'] === true)).toBe(true);
  });

  it('on SIGINT the same', async () => {
    const run = await runUntilReady(otlp(), 'SIGINT');
    expect(run.signal).toBe('SIGINT');
    expect(otlpReceiver.receiver.spans.length).toBeGreaterThan(0);
  });

  it("leaves the exit to the app's own SIGTERM handler, and still flushes", async () => {
    const run = await runUntilReady({ ...otlp(), FIXTURE_OWN_HANDLER: '1' });
    expect(run.stdout).toContain('app handler ran');
    expect(run.code).toBe(0);
    expect(otlpReceiver.receiver.spans.length).toBeGreaterThan(0);
  });

  it('flushes at a natural exit (beforeExit)', async () => {
    const run = await runNode(fixture('use-pg.mjs'), { env: otlp() });
    expect(run.code).toBe(0);
    expect(
      otlpReceiver.receiver.spans.filter((s) => s.attributes['db.system.name'] === 'postgresql').length,
    ).toBeGreaterThan(5);
  });
});

describe('OTEL_SDK_DISABLED=true', () => {
  it('exports and propagates nothing of OpenTelemetry; pgsight records slow and failed queries still', async () => {
    const run = await runNode(fixture('use-pg.mjs'), { env: { ...otlp(), OTEL_SDK_DISABLED: 'true' } });
    expect(run.code, run.stderr).toBe(0);
    expect(otlpReceiver.receiver.spans).toEqual([]);
    expect(otlpReceiver.receiver.points).toEqual([]);
    const actions = run.records.map((r) => field(r, 'event.action'));
    expect(actions.filter((a) => a === 'db.query.slow').length).toBeGreaterThan(0);
    expect(actions.filter((a) => a === 'db.query.error').length).toBeGreaterThan(0);
    expect(run.records.every((r) => field(r, 'trace.id') === undefined)).toBe(true);
    const propagated = await runNode(fixture('propagate-app.mjs'), { env: { OTEL_SDK_DISABLED: 'true' } });
    expect(propagated.code, propagated.stderr).toBe(0);
    expect(propagated.stdout).not.toMatch(/00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]/);
  });
});

describe('an exit with a destination that does not answer', () => {
  const silent = new SilentServer();
  beforeEach(() => silent.start().then(() => undefined));
  afterEach(() => silent.stop());

  it('OTLP: the exit waits at most the export timeout (2 s), and says so once', async () => {
    const run = await runNode(fixture('use-pg.mjs'), {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: silent.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('done');
    expect(run.stderr.match(/^pgsight: the exit waited \d\.\d s on OpenTelemetry export/gm)).toHaveLength(1);
  });

  it.each([
    ['does not answer', () => silent.url],
    ['refuses connections', () => 'http://127.0.0.1:1'],
  ])(
    'Elasticsearch that %s: the records wait in the spool; the exit waits at most 2 s, and says so once',
    async (_name, url) => {
      const cwd = await mkdtemp(join(tmpdir(), 'pgsight-exit-'));
      const run = await runNode(fixture('use-pg.mjs'), {
        cwd,
        args: ['--import', join(root, 'dist', 'src', 'preload', 'register.js')],
        env: { PGSIGHT_SLOW_QUERY_MS: '200', PGSIGHT_ELASTICSEARCH_URL: url() },
      });
      expect(run.code).toBe(0);
      expect(run.stderr.match(/did not store the last documents within 2000 ms of the exit/g)).toHaveLength(
        1,
      );
      // Everything is on disk for the next start: the summary counts the slow and failed records as spooled.
      expect(run.stderr).toMatch(/elasticsearch logs-pgsight\.\S+-default: shipped=0 retried=\d+ spooled=7 /);
    },
  );
});

describe('guards', () => {
  it('does nothing inside worker threads', async () => {
    const run = await runNode(fixture('worker-thread.mjs'), { env: { PGSIGHT_SLOW_QUERY_MS: '0' } });
    expect(run.stdout).toContain('worker pg: plain');
    const texts = run.records.map((r) => String(field(r, 'db.query.text')));
    expect(texts.some((t) => t.includes('main_thread'))).toBe(true);
    expect(texts.some((t) => t.includes('worker_thread'))).toBe(false);
  });

  it('warns once, clearly, when pg is present but could not be patched', async () => {
    // An app whose pg is a version outside the instrumented range (>=8.0.3 <9): nothing can patch it.
    const app = await mkdtemp(join(tmpdir(), 'pgsight-app-'));
    await mkdir(join(app, 'node_modules', 'pg'), { recursive: true });
    await writeFile(
      join(app, 'node_modules', 'pg', 'package.json'),
      '{"name":"pg","version":"9.0.0","main":"index.js"}',
    );
    await writeFile(
      join(app, 'node_modules', 'pg', 'index.js'),
      'class Client { query() {} }\nmodule.exports = { Client };\n',
    );
    await writeFile(join(app, 'app.cjs'), "require('pg'); console.log('app ran');\n");
    const run = await runNode(join(app, 'app.cjs'), {
      args: ['--import', join(root, 'dist', 'src', 'preload', 'register.js')],
      cwd: app,
    });
    expect(run.stdout).toContain('app ran');
    expect(
      run.stderr.match(
        /pgsight: WARNING: pg was loaded but its Client\.prototype\.query is not instrumented/g,
      ),
    ).toHaveLength(1);
  });
});

describe('correlation', () => {
  it('puts the query span under the HTTP request span, and gives pino records the same trace id', async () => {
    const run = await runNode(fixture('http-app.mjs'), { env: otlp() });
    expect(run.code).toBe(0);
    const pinoLine = run.records.find((r) => r.msg === 'handling request');
    const slow = run.records.find((r) => field(r, 'event.action') === 'db.query.slow');
    expect(pinoLine?.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(field(slow ?? {}, 'trace.id')).toBe(pinoLine?.trace_id);

    const serverSpan = otlpReceiver.receiver.spans.find(
      (s) => s.kind === 2 && s.attributes['http.route'] === undefined,
    );
    const querySpan = otlpReceiver.receiver.spans.find((s) =>
      String(s.attributes['db.query.text']).includes('in_request'),
    );
    expect(serverSpan?.traceId).toBe(pinoLine?.trace_id);
    expect(querySpan?.parentSpanId).toBe(serverSpan?.spanId);
  });

  it.each([
    ['a sampled', '01'],
    ['an unsampled', '00'],
  ])(
    'with no exporter, %s incoming trace propagates: same trace id downstream and in the logs, same flag',
    async (_, flag) => {
      const traceId = '4bf92f3536b3b0ff6a6f0d1e27d1e0b1';
      const run = await runNode(fixture('propagate-app.mjs'), {
        env: { INCOMING_TRACEPARENT: `00-${traceId}-00f067aa0ba902b7-${flag}`, PGSIGHT_SLOW_QUERY_MS: '10' },
      });
      expect(run.code, run.stderr).toBe(0);
      const downstream = String(run.records.find((r) => 'downstream' in r)?.downstream);
      expect(downstream).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-${flag}$`));
      expect(downstream).not.toContain('00f067aa0ba902b7'); // a span of this service sits in between
      // fetch (undici) carries the same context.
      expect(run.records.find((r) => 'downstreamFetch' in r)?.downstreamFetch).toBe(downstream);
      expect(run.records.find((r) => r.msg === 'handling request')?.trace_id).toBe(traceId);
      expect(run.records.find((r) => r.msg === 'body read')?.trace_id).toBe(traceId);
      const slow = run.records.find((r) => field(r, 'event.action') === 'db.query.slow');
      expect(field(slow ?? {}, 'trace.id')).toBe(traceId);
      expect(field(slow ?? {}, 'span.id')).toMatch(/^[0-9a-f]{16}$/);
    },
  );

  it('with an exporter, fetch (undici) gets a CLIENT span of its own, whose id the downstream receives', async () => {
    const run = await runNode(fixture('propagate-app.mjs'), { env: otlp() });
    expect(run.code, run.stderr).toBe(0);
    const received = String(run.records.find((r) => 'downstreamFetch' in r)?.downstreamFetch);
    const [, traceId, spanId] = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(received) ?? [];
    const span = otlpReceiver.receiver.spans.find((s) => s.spanId === spanId);
    expect(span).toMatchObject({ traceId, kind: 3 });
    expect(String(span?.attributes['url.full'])).toMatch(/\/downstream$/);
  });

  it('with no exporter and no incoming trace, starts a sampled one', async () => {
    const run = await runNode(fixture('propagate-app.mjs'));
    expect(run.code, run.stderr).toBe(0);
    const downstream = String(run.records.find((r) => 'downstream' in r)?.downstream);
    const [, traceId] = /^00-([0-9a-f]{32})-[0-9a-f]{16}-01$/.exec(downstream) ?? [];
    expect(traceId).toBeDefined();
    expect(run.records.find((r) => r.msg === 'handling request')?.trace_id).toBe(traceId);
  });

  it('exports the pool metrics of instrumentation-pg', async () => {
    await runNode(fixture('use-pg.mjs'), { env: { ...otlp(), OTEL_TRACES_EXPORTER: 'none' } });
    const names = new Set(otlpReceiver.receiver.points.map((p) => p.metric));
    expect(names).toContain('db.client.connection.count');
    expect(names).toContain('db.client.connection.max');
  });
});
