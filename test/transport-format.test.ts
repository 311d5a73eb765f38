// pgsight/transport's format: redaction (a corpus, through every output) and ECS mapping (plain pino, pino-http,
// errors with causes, pgsight's own db records), as pino really sends records to it.

import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import pino from 'pino';
import { pinoHttp } from 'pino-http';
import { afterEach, describe, expect, it } from 'vitest';
import { createRedactor, luhnValid } from '../transports/redact/index.js';
import { FakeElasticsearch } from './support/es-server.js';
import { LineServer } from './support/line-server.js';
import { field, fixture, runNode } from './support/run-node.js';
import { CORPUS_SECRETS, innocentRecord, SECRET_VALUES } from './support/secrets.js';

const stoppers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(stoppers.splice(0).map((stop) => stop()));
});

/** A pino logger writing through pgsight/transport in a worker, as apps use it; `end()` flushes and closes. */
function transportLogger(options: Record<string, unknown>, pinoOptions: pino.LoggerOptions = {}) {
  const transport = pino.transport({
    target: 'pgsight/transport',
    options: { statusIntervalMs: 0, ...options },
  });
  const logger = pino(pinoOptions, transport);
  const end = () =>
    new Promise<void>((resolve) => {
      transport.once('close', () => resolve());
      transport.end();
    });
  return { logger, transport, end };
}

const readLines = (path: string) =>
  readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe('redaction', () => {
  it('leaves no secret in any output: file, Elasticsearch, Logstash', async () => {
    const es = new FakeElasticsearch();
    await es.start();
    const logstash = new LineServer();
    await logstash.start();
    stoppers.push(
      () => es.stop(),
      () => logstash.stop(),
    );
    const dir = mkdtempSync(join(tmpdir(), 'pgsight-redact-'));
    // The app runs in its own process, as in production: the servers here must keep answering while the
    // app's exit blocks its main thread to flush the transport.
    const run = await runNode(fixture('log-secrets.mjs'), {
      args: [],
      env: {
        TRANSPORT_OPTIONS: JSON.stringify({
          statusIntervalMs: 0,
          redact: { patterns: ['ACME-TENANT-SECRET-\\d+'] },
          outputs: [
            { type: 'file', path: join(dir, 'app.ndjson') },
            {
              type: 'elasticsearch',
              node: es.url,
              dataStream: 'logs-redact-test',
              spoolDir: join(dir, 'spool'),
              flushIntervalMs: 50,
            },
            { type: 'logstash', host: '127.0.0.1', port: logstash.port, spoolDir: join(dir, 'spool') },
          ],
        }),
      },
    });
    expect(run.code).toBe(0);
    const outputs = {
      file: readFileSync(join(dir, 'app.ndjson'), 'utf8'),
      elasticsearch: JSON.stringify([...es.docs.values()].map((d) => d.source)),
      logstash: logstash.lines.join('\n'),
    };
    for (const [name, text] of Object.entries(outputs)) {
      expect(text.length, name).toBeGreaterThan(500);
      // Values this short (a 3-digit CVV) occur by chance in timestamps and ids: their fields are checked below.
      const searchable = Object.entries({ ...SECRET_VALUES, ...CORPUS_SECRETS }).filter(
        ([, v]) => v.length >= 8,
      );
      for (const [kind, secret] of searchable) {
        // JSON escapes '/' and '"' the same in every output; search the raw secret and its JSON form.
        expect(
          text.includes(secret) || text.includes(JSON.stringify(secret).slice(1, -1)),
          `${name} leaks ${kind}`,
        ).toBe(false);
      }
    }
    const doc = JSON.parse(outputs.file.split('\n')[0] as string);
    // Only the secret part is replaced; the rest stays readable.
    expect(doc.dsn).toBe('postgres://app:[REDACTED]@db.internal:5432/ledger');
    expect(doc.query).toBe("ALTER ROLE app PASSWORD '[REDACTED]'");
    expect(doc.message).toContain(
      'login by jane with Basic [REDACTED]; card [REDACTED] and [REDACTED] and [REDACTED]',
    );
    expect(doc.payment.holder).toBe('Jane Roe');
    expect(doc.payment.CVV).toBe('[REDACTED]');
    const shipped = [...es.docs.values()].map((d) => d.source as { payment?: { CVV?: string } });
    expect(shipped.find((d) => d.payment)?.payment?.CVV).toBe('[REDACTED]');
    expect(doc.user.name).toBe('jane');
    expect(doc.tenant).toBe('tenant key [REDACTED] in use');
    expect(doc.error.stack_trace).toContain(
      '-----BEGIN RSA PRIVATE KEY-----[REDACTED]-----END RSA PRIVATE KEY-----',
    );
    expect(doc.error.stack_trace).toContain('at connect (/app/db.js:10:5)');
  });

  it('keeps innocent keys and values intact', () => {
    const redact = createRedactor();
    const record = innocentRecord();
    expect(redact(structuredClone(record))).toEqual(record);
  });

  it('honours a custom censor and extra keys, and is bounded in depth and width', () => {
    const redact = createRedactor({ censor: '***', keys: ['pin'], maxDepth: 4, maxKeys: 3 });
    expect(redact({ PIN: '1234', a: { b: { c: { d: { e: 'deep' } } } } })).toEqual({
      PIN: '***',
      a: { b: { c: { d: '[truncated: too deep]' } } },
    });
    const wide = redact({ k1: 1, k2: 2, k3: 3, k4: 4, list: [1, 2, 3, 4, 5] });
    // What the bounds cut is marked, never silent.
    expect(wide).toEqual({ k1: 1, k2: 2, k3: 3, '[truncated]': '2 more keys' });
    expect(redact({ list: [1, 2, 3, 4, 5] })).toEqual({ list: [1, 2, 3, '[truncated: 2 more]'] });
    const long = redact({ [`k${'x'.repeat(300_000)}`]: 'v', n: Number.POSITIVE_INFINITY });
    expect(Object.keys(long).sort()).toEqual(['n', `k${'x'.repeat(255)}…[truncated]`].sort());
    expect(long.n).toBe('Infinity');
    expect(redact.truncated).toBeGreaterThan(0);
  });

  it('checks card numbers with Luhn', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    const redact = createRedactor();
    expect(redact.text('order 4111111111111112 shipped')).toBe('order 4111111111111112 shipped');
    expect(redact.text('card 4111-1111-1111-1111 charged')).toBe('card [REDACTED] charged');
    // A Luhn-valid digit run inside a hex id (a trace id) is part of the id, not a card.
    const traceId = '79ee38f4111111111111111ef1821b6306';
    expect(redact.text(traceId)).toBe(traceId);
    expect(redact({ trace: { id: traceId } })).toEqual({ trace: { id: traceId } });
    // An all-digit span id that happens to pass Luhn stays an id where ECS keeps ids.
    expect(redact({ span: { id: '4111111111111111' }, note: '4111111111111111' })).toEqual({
      span: { id: '4111111111111111' },
      note: '[REDACTED]',
    });
  });
});

describe('ECS mapping', () => {
  it('maps plain pino records, custom levels and a custom messageKey', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgsight-ecs-'));
    const path = join(dir, 'app.ndjson');
    const { logger, end } = transportLogger(
      {
        service: { name: 'ledger', version: '1.2.3', environment: 'production' },
        outputs: [{ type: 'file', path }],
      },
      { name: 'api', messageKey: 'text', customLevels: { audit: 35 } },
    );
    logger.info(
      {
        trace_id: '4bf92f3536b3b0ff6a6f0d1e27d1e0b1',
        span_id: '00f067aa0ba902b7',
        trace_flags: '01',
        order: { id: 7 },
      },
      'placed',
    );
    (logger as unknown as { audit: (m: string) => void }).audit('audited');
    logger.warn(
      { host: 'web-1', service: 'billing', event: 'signup', http: { request: { method: 'GET' } } },
      'collisions',
    );
    await end();
    const [placed, audited, collisions] = readLines(path);
    expect(Object.keys(placed as object)[0]).toBe('@timestamp');
    expect(placed).toMatchObject({
      'log.level': 'info',
      message: 'placed',
      'ecs.version': '8.11.0',
      service: { name: 'ledger', version: '1.2.3', environment: 'production' },
      event: { dataset: 'pgsight.ledger', id: expect.any(String) },
      log: { logger: 'api' },
      process: { pid: expect.any(Number) },
      host: { hostname: expect.any(String) },
      trace: { id: '4bf92f3536b3b0ff6a6f0d1e27d1e0b1' },
      span: { id: '00f067aa0ba902b7' },
      order: { id: 7 },
    });
    expect(placed).not.toHaveProperty('trace_id');
    expect(placed).not.toHaveProperty('msg');
    expect(audited).toMatchObject({ 'log.level': 'audit', message: 'audited' });
    // User values in an incompatible shape move under pino.*, never dropped; compatible objects merge.
    expect(collisions).toMatchObject({
      host: { hostname: expect.any(String) },
      service: { name: 'ledger' },
      pino: { host: 'web-1', service: 'billing', event: 'signup' },
      http: { request: { method: 'GET' } },
    });
  });

  it('maps errors with their cause chain and code', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgsight-ecs-'));
    const path = join(dir, 'app.ndjson');
    const { logger, end } = transportLogger({ outputs: [{ type: 'file', path }] });
    const root = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    logger.error(
      { err: Object.assign(new Error('payment failed', { cause: root }), { code: 'E_PAY' }) },
      'charge failed',
    );
    await end();
    const [doc] = readLines(path);
    expect(doc?.error).toMatchObject({
      type: 'Error',
      message: 'payment failed: socket hang up',
      code: 'E_PAY',
    });
    expect(String(field(doc, 'error.stack_trace'))).toMatch(
      /Error: payment failed[\s\S]*caused by: Error: socket hang up/,
    );
    expect(doc).not.toHaveProperty('err');
  });

  it('maps pino-http request records: http.*, url.*, client.*, user_agent, duration; headers allow-listed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgsight-ecs-'));
    const path = join(dir, 'app.ndjson');
    const { logger, end } = transportLogger({ outputs: [{ type: 'file', path }] });
    const server = createServer((req, res) => {
      pinoHttp({ logger })(req, res);
      res.setHeader('content-type', 'application/json');
      res.setHeader('set-cookie', 'sid=abc');
      res.statusCode = 201;
      res.end('{"ok":true}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await fetch(`http://127.0.0.1:${port}/transfers?dry=1`, {
      method: 'POST',
      headers: {
        'user-agent': 'pgsight-test/1.0',
        authorization: 'Bearer abcdefghijklmnopqrstuvwxyz',
        cookie: 'sid=abc',
        'x-request-id': 'req-42',
        'content-type': 'application/json',
      },
      body: '{}',
    });
    server.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await end();
    const [doc] = readLines(path);
    expect(doc).toMatchObject({
      message: 'request completed',
      http: {
        request: {
          method: 'POST',
          id: expect.anything(),
          headers: { 'content-type': 'application/json', 'x-request-id': 'req-42' },
        },
        response: { status_code: 201, headers: { 'content-type': 'application/json' } },
      },
      url: { path: '/transfers', query: 'dry=1', original: '/transfers?dry=1' },
      client: { ip: '127.0.0.1' },
      user_agent: { original: 'pgsight-test/1.0' },
    });
    expect(typeof field(doc, 'event.duration')).toBe('number'); // responseTime (ms) in ns; 0 for a sub-ms request
    const text = JSON.stringify(doc);
    expect(text).not.toContain('authorization');
    expect(text).not.toContain('sid=abc');
    expect(doc).not.toHaveProperty('req');
    expect(doc).not.toHaveProperty('responseTime');
  });

  it("passes pgsight's own db records through with their fields", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgsight-ecs-'));
    const path = join(dir, 'app.ndjson');
    const { transport, end } = transportLogger({
      service: { name: 'ledger' },
      outputs: [{ type: 'file', path }],
    });
    const record = {
      '@timestamp': '2026-11-26T07:00:00.000Z',
      'ecs.version': '8.11.0',
      service: { name: 'pgsight' },
      'log.level': 'warn',
      log: { logger: 'pgsight' },
      event: {
        action: 'db.query.slow',
        kind: 'event',
        category: ['database'],
        duration: 612000000,
      },
      db: {
        system: { name: 'postgresql' },
        namespace: 'ledger',
        operation: { name: 'SELECT' },
        query: { text: 'SELECT * FROM accounts WHERE id = ?', fingerprint: '1a2b3c4d5e6f7a8b' },
      },
      server: { address: '127.0.0.1', port: 5432 },
      message: 'slow query (612.0 ms): SELECT * FROM accounts WHERE id = ?',
    };
    transport.write(`${JSON.stringify(record)}\n`);
    transport.write('this line is not JSON\n');
    await end();
    const [doc, unparsed] = readLines(path);
    expect(doc).toMatchObject({
      '@timestamp': '2026-11-26T07:00:00.000Z',
      'log.level': 'warn',
      event: { action: 'db.query.slow', dataset: 'pgsight.ledger', duration: 612000000 },
      db: record.db,
      server: record.server,
      message: record.message,
    });
    expect(unparsed).toMatchObject({ message: 'this line is not JSON', tags: ['pgsight_unparsed_line'] });
  });
});

describe('file output', () => {
  it('appends, and follows rotation (the file renamed away is replaced by a new one)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgsight-rotate-'));
    const path = join(dir, 'app.ndjson');
    const { logger, end } = transportLogger({ outputs: [{ type: 'file', path, rotationCheckMs: 50 }] });
    logger.info('before rotation');
    while (!existsSync(path) || readFileSync(path, 'utf8') === '')
      await new Promise((resolve) => setTimeout(resolve, 20));
    renameSync(path, `${path}.1`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    logger.info('after rotation');
    await end();
    expect(readLines(`${path}.1`).map((d) => d.message)).toEqual(['before rotation']);
    expect(readLines(path).map((d) => d.message)).toEqual(['after rotation']);
  });
});

describe('flush', () => {
  it('logger.flush(cb) calls back once every record is written: an app may exit in the callback', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgsight-flush-'));
    const path = join(dir, 'app.ndjson');
    const run = await runNode(fixture('flush-then-kill.mjs'), {
      args: [],
      env: {
        LINES: '500',
        TRANSPORT_OPTIONS: JSON.stringify({
          statusIntervalMs: 0,
          summary: 'never',
          outputs: [{ type: 'file', path }, { type: 'stdout' }],
        }),
      },
    });
    expect(run.signal).toBe('SIGKILL');
    expect(run.stderr).toContain('in file at flush callback: 500');
    expect(readLines(path).map((d) => d.message)).toEqual(Array.from({ length: 500 }, (_, i) => `line ${i}`));
    expect(run.records.map((d) => d.message)).toEqual(Array.from({ length: 500 }, (_, i) => `line ${i}`));
  });
});

describe('options', () => {
  it('rejects invalid options with every problem named', async () => {
    const load = (await import('../transports/index.js')).default;
    await expect(
      load({
        outputs: [
          { type: 'elasticsearch', node: 'localhost:9200', dataStream: 'logs-my-app-default' },
          { type: 'logstash', host: '', port: 70000 },
          // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong
          { type: 'kafka' } as any,
        ],
        redact: { patterns: ['(unclosed', '(a+)+$'] },
      }),
    ).rejects.toMatchObject({
      code: 'PGSIGHT_ERR_TRANSPORT_OPTIONS',
      message: expect.stringMatching(
        /outputs\[0\]\.node .*outputs\[0\]\.dataStream .*outputs\[1\]\.host .*outputs\[1\]\.port .*outputs\[2\]\.type .*redact\.patterns: "\(unclosed" .*redact\.patterns: "\(a\+\)\+\$" repeats a group/,
      ),
    });
  });

  it("heapReserveMb: the worker's heap holds that many MiB more, and 0 holds none", async () => {
    const load = (await import('../transports/index.js')).default;
    await expect(load({ heapReserveMb: -1 })).rejects.toThrow(/heapReserveMb/);
    const path = join(mkdtempSync(join(tmpdir(), 'pgsight-reserve-')), 'out.ndjson');
    // Measured in a worker thread of the test's own (Worker#getHeapStatistics is Node 24's).
    const used = async (heapReserveMb: number) => {
      const worker = new Worker(fixture('transport-in-worker.mjs'), {
        workerData: { options: { heapReserveMb, statusIntervalMs: 0, outputs: [{ type: 'file', path }] } },
      });
      const [bytes] = (await once(worker, 'message')) as [number];
      await once(worker, 'exit');
      return bytes / 2 ** 20;
    };
    const none = await used(0);
    const reserved = await used(64);
    expect(reserved - none).toBeGreaterThan(60);
    expect(reserved - none).toBeLessThan(80);
  });
});
