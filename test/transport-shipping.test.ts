// pgsight/transport shipping, as apps run it: child processes logging through pino.transport into a local
// Elasticsearch-compatible server and a TCP json_lines server, with outages, faults and kills.
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeElasticsearch } from './support/es-server.js';
import { LineServer } from './support/line-server.js';
import { fixture, root, runNode } from './support/run-node.js';

const servers: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function elasticsearch(): Promise<FakeElasticsearch> {
  const es = new FakeElasticsearch();
  await es.start();
  servers.push(es);
  return es;
}

const until = async (check: () => boolean, timeoutMs = 15_000) => {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

const spoolLines = (dir: string) => {
  let n = 0;
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(d, entry.name));
      else if (entry.name.endsWith('.ndjson') && entry.name !== 'dead-letter.ndjson')
        n += readFileSync(join(d, entry.name), 'utf8').split('\n').filter(Boolean).length;
    }
  };
  walk(dir);
  return n;
};

const esOptions = (es: FakeElasticsearch, spoolDir: string, extra: Record<string, unknown> = {}) => ({
  outputs: [
    {
      type: 'elasticsearch',
      node: es.url,
      dataStream: 'logs-burst-test',
      spoolDir,
      flushIntervalMs: 100,
      retry: { baseMs: 20, maxMs: 200 },
      ...extra,
    },
  ],
  statusIntervalMs: 0,
  summary: 'always',
});

const runsOf = (es: FakeElasticsearch) =>
  [...es.docs.values()].map((d) => d.source as { n: number; run: string });

describe('Elasticsearch output', () => {
  /** A burst of `lines` lines with Elasticsearch stopped for 400 ms in the middle of it; every line checked. */
  async function burstThroughOutage(es: FakeElasticsearch, lines: number, run: string) {
    const spoolDir = mkdtempSync(join(tmpdir(), 'pgsight-spool-'));
    const child = runNode(fixture('log-burst.mjs'), {
      args: [],
      env: {
        TRANSPORT_OPTIONS: JSON.stringify(esOptions(es, spoolDir)),
        LINES: String(lines),
        PAUSE_EVERY: '100',
        PAUSE_MS: '20',
        RUN: run,
      },
    });
    await until(() => es.count() > 200);
    const port = es.port;
    await es.stop(); // down mid-burst
    await new Promise((resolve) => setTimeout(resolve, 400));
    await es.start(port); // back
    const result = await child;
    expect(result.code).toBe(0);
    const ns = runsOf(es).map((d) => d.n);
    expect(ns).toHaveLength(lines);
    expect(new Set(ns).size).toBe(lines);
    expect(spoolLines(spoolDir)).toBe(0); // replayed and released
    return result;
  }

  it('an outage during a burst: every line arrives, exactly once, after recovery', async () => {
    const run = await burstThroughOutage(await elasticsearch(), 3000, 'outage');
    expect(run.stderr).toMatch(/pgsight\/transport: received=3000 .*dropped=0/);
  });

  it('with a least-privilege key (create_doc, no monitor): an outage still recovers, probed by re-sending', async () => {
    const es = await elasticsearch();
    es.keyPrivileges = 'shipper'; // HEAD / and GET / answer 403, as for a shipper's key
    await burstThroughOutage(es, 2000, 'shipper');
    expect(es.requests.some((r) => r.startsWith('HEAD /') || r === 'GET /')).toBe(false);
  });

  it('a key the cluster refuses (403): said once, with the privilege needed; every line waits in the spool', async () => {
    const es = await elasticsearch();
    es.keyPrivileges = 'none';
    const spoolDir = mkdtempSync(join(tmpdir(), 'pgsight-spool-'));
    const run = await runNode(fixture('log-burst.mjs'), {
      args: [],
      env: {
        TRANSPORT_OPTIONS: JSON.stringify({ ...esOptions(es, spoolDir), closeTimeoutMs: 1500 }),
        LINES: '300',
        RUN: 'refused',
      },
    });
    expect(run.code).toBe(0);
    expect(
      run.stderr.match(
        /refused the transport \(403: action \[indices:data\/write\/bulk\[s\]\] is unauthorized/g,
      ),
    ).toHaveLength(1);
    expect(run.stderr).toContain(
      'needs the index privileges create_doc and auto_configure on logs-burst-test',
    );
    expect(spoolLines(spoolDir)).toBe(300);
    expect(es.count()).toBe(0);
  });

  it('a mapping conflict: dead-lettered with its reason, or counted as failure-stored where the stream has a failure store', async () => {
    for (const failureStore of [false, true]) {
      const es = await elasticsearch();
      es.failureStore = failureStore;
      const spoolDir = mkdtempSync(join(tmpdir(), 'pgsight-spool-'));
      // `order` is an object in every line but one, where it is a string: a real cluster's dynamic mapping
      // refuses that document (document_parsing_exception).
      const run = await runNode(fixture('log-burst.mjs'), {
        args: [],
        env: {
          TRANSPORT_OPTIONS: JSON.stringify(esOptions(es, spoolDir)),
          LINES: '20',
          RUN: 'conflict',
          CONFLICT_AT: '10',
        },
      });
      expect(run.code).toBe(0);
      expect(es.count()).toBe(19);
      if (failureStore) {
        expect(es.failureStored).toHaveLength(1);
        expect(run.stderr).toMatch(/shipped=19 .*dead_lettered=0 .*failure_stored=1/);
      } else {
        expect(run.stderr).toMatch(/shipped=19 .*dead_lettered=1 /);
        const dead = readFileSync(join(spoolDir, 'logs-burst-test', 'dead-letter.ndjson'), 'utf8');
        expect(dead).toContain('document_parsing_exception');
      }
    }
  });

  it('a connection cut after the cluster stored a batch: counted as shipped from the replay, stored once', async () => {
    const es = await elasticsearch();
    es.cutResponses = 1;
    const spoolDir = mkdtempSync(join(tmpdir(), 'pgsight-spool-'));
    const run = await runNode(fixture('log-burst.mjs'), {
      args: [],
      env: { TRANSPORT_OPTIONS: JSON.stringify(esOptions(es, spoolDir)), LINES: '500', RUN: 'cut' },
    });
    expect(run.code).toBe(0);
    expect(es.count()).toBe(500);
    expect(es.conflicts).toBeGreaterThan(0); // the replay found the cut batch stored
    expect(run.stderr).toMatch(/received=500 .*shipped=500 .*dropped=0/);
  });

  it('an answer that does not say errors: false (a gateway answering 200 {}) is not taken as stored', async () => {
    const es = await elasticsearch();
    es.emptyAnswers = 2;
    const spoolDir = mkdtempSync(join(tmpdir(), 'pgsight-spool-'));
    const run = await runNode(fixture('log-burst.mjs'), {
      args: [],
      env: { TRANSPORT_OPTIONS: JSON.stringify(esOptions(es, spoolDir)), LINES: '300', RUN: 'empty' },
    });
    expect(run.code).toBe(0);
    expect(es.count()).toBe(300);
    expect(run.stderr).toMatch(/received=300 .*shipped=300 .*dropped=0/);
  });

  it('a slow cluster: the transport stops reading instead of spooling, and every line arrives once', async () => {
    const es = await elasticsearch();
    es.bulkDelayMs = 20;
    const spoolDir = mkdtempSync(join(tmpdir(), 'pgsight-spool-'));
    const lines = 1000;
    const run = await runNode(fixture('log-burst.mjs'), {
      args: [],
      env: {
        // A queue bound of ~20 documents and small batches: far more lines than the queue holds arrive
        // while each request waits 20 ms.
        TRANSPORT_OPTIONS: JSON.stringify(
          esOptions(es, spoolDir, { maxQueueBytes: 8192, flushBytes: 4096, concurrency: 1 }),
        ),
        LINES: String(lines),
        RUN: 'slow',
      },
    });
    expect(run.code).toBe(0);
    const ns = runsOf(es).map((d) => d.n);
    expect(new Set(ns).size).toBe(lines);
    expect(ns).toHaveLength(lines);
    expect(run.stderr).toMatch(/received=1000 .*shipped=1000 retried=0 spooled=0 dead_lettered=0 dropped=0/);
  });

  it('a cluster that stays slow past maxBackpressureMs: the overflow goes to the spool, and every line arrives once', async () => {
    const es = await elasticsearch();
    es.bulkDelayMs = 150;
    const spoolDir = mkdtempSync(join(tmpdir(), 'pgsight-spool-'));
    const lines = 400;
    const run = await runNode(fixture('log-burst.mjs'), {
      args: [],
      env: {
        TRANSPORT_OPTIONS: JSON.stringify(
          esOptions(es, spoolDir, {
            maxQueueBytes: 16384,
            flushBytes: 16384,
            concurrency: 1,
            maxBackpressureMs: 50,
          }),
        ),
        LINES: String(lines),
        RUN: 'stalled',
      },
    });
    expect(run.code).toBe(0);
    const ns = runsOf(es).map((d) => d.n);
    expect(ns).toHaveLength(lines);
    expect(new Set(ns).size).toBe(lines);
    const spooled = Number(/spooled=(\d+)/.exec(run.stderr)?.[1]);
    expect(spooled).toBeGreaterThan(0);
    expect(run.stderr).toMatch(/received=400 .*shipped=400 .*dead_lettered=0 dropped=0/);
    expect(spoolLines(spoolDir)).toBe(0);
  });

  it.each(['8.11.0', '9.1.0'])(
    'ships to Elasticsearch %s (REST compatibility headers it accepts)',
    async (version) => {
      const es = await elasticsearch();
      es.version = version;
      const spoolDir = mkdtempSync(join(tmpdir(), 'pgsight-spool-'));
      const run = await runNode(fixture('log-burst.mjs'), {
        args: [],
        env: { TRANSPORT_OPTIONS: JSON.stringify(esOptions(es, spoolDir)), LINES: '50', RUN: version },
      });
      expect(run.code).toBe(0);
      expect(run.stderr).toContain('dead_lettered=0');
      expect(es.count('logs-burst-test')).toBe(50);
      expect(spoolLines(spoolDir)).toBe(0);
    },
  );

  it('429 and 503 on the request are retried until they succeed, never dropped', async () => {
    const es = await elasticsearch();
    const spoolDir = mkdtempSync(join(tmpdir(), 'pgsight-spool-'));
    es.requestStatus = 429;
    setTimeout(() => {
      es.requestStatus = 503;
    }, 300);
    setTimeout(() => {
      es.requestStatus = undefined;
    }, 700);
    const run = await runNode(fixture('log-burst.mjs'), {
      args: [],
      env: { TRANSPORT_OPTIONS: JSON.stringify(esOptions(es, spoolDir)), LINES: '500', RUN: 'throttled' },
    });
    expect(run.code).toBe(0);
    expect(new Set(runsOf(es).map((d) => d.n)).size).toBe(500);
    expect(es.count()).toBe(500);
  });

  it('per-item 429s are re-sent; a mapping error goes to the dead-letter file with its reason', async () => {
    const es = await elasticsearch();
    const spoolDir = mkdtempSync(join(tmpdir(), 'pgsight-spool-'));
    const throttledOnce = new Set<string>();
    es.itemFault = (doc, id) => {
      const n = (doc as { n: number }).n;
      if (n % 100 === 7)
        return {
          status: 400,
          error: {
            type: 'document_parsing_exception',
            reason: '[order.id] failed to parse field of type date',
          },
        };
      if (n % 10 === 3 && !throttledOnce.has(id)) {
        throttledOnce.add(id);
        return { status: 429, error: { type: 'es_rejected_execution_exception', reason: 'queue full' } };
      }
      return undefined;
    };
    const run = await runNode(fixture('log-burst.mjs'), {
      args: [],
      env: { TRANSPORT_OPTIONS: JSON.stringify(esOptions(es, spoolDir)), LINES: '1000', RUN: 'faults' },
    });
    expect(run.code).toBe(0);
    expect(es.count()).toBe(990);
    const deadLetters = readFileSync(join(spoolDir, 'logs-burst-test', 'dead-letter.ndjson'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(deadLetters.map((d) => d.document.n).sort((a, b) => a - b)).toEqual([
      7, 107, 207, 307, 407, 507, 607, 707, 807, 907,
    ]);
    expect(deadLetters[0]).toMatchObject({
      status: 400,
      reason: { type: 'document_parsing_exception' },
      index: 'logs-burst-test',
    });
    expect(run.stderr).toMatch(/dead_lettered=10 dropped=0/);
  });

  it('killed mid-burst while Elasticsearch is down: the next start replays the spool, in order, without duplicates', async () => {
    const es = await elasticsearch();
    const port = es.port;
    await es.stop();
    const spoolDir = mkdtempSync(join(tmpdir(), 'pgsight-spool-'));
    const options = JSON.stringify(esOptions(es, spoolDir));
    let app: import('node:child_process').ChildProcess | undefined;
    const first = runNode(fixture('log-burst.mjs'), {
      args: [],
      env: { TRANSPORT_OPTIONS: options, LINES: '2000', HOLD: '1', RUN: 'killed' },
      onLine: (line, child) => {
        if (line === 'logged') app = child;
      },
    });
    await until(() => app !== undefined && spoolLines(spoolDir) >= 2000);
    const killedAt = spoolLines(spoolDir);
    // SIGKILL: no exit handler, no flush. What was spooled must survive.
    app?.kill('SIGKILL');
    const killed = await first;
    expect(killed.signal).toBe('SIGKILL');
    expect(killedAt).toBe(2000);

    await es.start(port);
    const second = await runNode(fixture('log-burst.mjs'), {
      args: [],
      env: { TRANSPORT_OPTIONS: options, LINES: '10', RUN: 'restart' },
    });
    expect(second.code).toBe(0);
    const docs = runsOf(es);
    const killedRun = docs.filter((d) => d.run === 'killed').map((d) => d.n);
    expect(killedRun).toHaveLength(2000);
    expect(new Set(killedRun).size).toBe(2000);
    expect(docs.filter((d) => d.run === 'restart')).toHaveLength(10);
    // Replayed in order: the spooled run arrived before the new run's lines.
    const order = [...es.docs.values()].map((d) => (d.source as { run: string }).run);
    expect(order.lastIndexOf('killed')).toBeLessThan(order.indexOf('restart'));
    expect(spoolLines(spoolDir)).toBe(0);
  });
});

describe("pgsight's own records", () => {
  it('reach Elasticsearch too when PGSIGHT_ELASTICSEARCH_URL is set', async () => {
    const es = await elasticsearch();
    const cwd = mkdtempSync(join(tmpdir(), 'pgsight-app-')); // the spool lands in the app's directory
    const run = await runNode(fixture('use-pg.mjs'), {
      cwd,
      args: ['--import', join(root, 'dist', 'src', 'preload', 'register.js')],
      env: { PGSIGHT_SLOW_QUERY_MS: '200', PGSIGHT_ELASTICSEARCH_URL: es.url, OTEL_SERVICE_NAME: 'ledger' },
    });
    expect(run.code).toBe(0);
    const docs = [...es.docs.values()];
    expect(docs.every((d) => d.index === 'logs-pgsight.ledger-default')).toBe(true);
    // data_stream.* agrees with the stream's name (the template maps them as constant_keyword).
    expect(docs[0]?.source.data_stream).toEqual({
      type: 'logs',
      dataset: 'pgsight.ledger',
      namespace: 'default',
    });
    const slow = docs.filter((d) => (d.source.event as { action?: string }).action === 'db.query.slow');
    expect(slow).toHaveLength(5);
    expect(
      docs.filter((d) => (d.source.event as { action?: string }).action === 'db.query.error'),
    ).toHaveLength(2);
    // And stdout still has them.
    expect(
      run.records.filter((r) => (r.event as { action?: string })?.action === 'db.query.slow'),
    ).toHaveLength(5);
  });
});

describe('Logstash output', () => {
  it('ships json_lines over TCP, and spools and replays across a Logstash restart', async () => {
    const logstash = new LineServer();
    await logstash.start();
    servers.push(logstash);
    const spoolDir = mkdtempSync(join(tmpdir(), 'pgsight-spool-'));
    const options = {
      outputs: [
        {
          type: 'logstash',
          host: '127.0.0.1',
          port: logstash.port,
          spoolDir,
          retry: { baseMs: 20, maxMs: 100 },
        },
      ],
      statusIntervalMs: 0,
    };
    const child = runNode(fixture('log-burst.mjs'), {
      args: [],
      env: {
        TRANSPORT_OPTIONS: JSON.stringify(options),
        LINES: '2000',
        PAUSE_EVERY: '100',
        PAUSE_MS: '20',
        RUN: 'tcp',
      },
    });
    await until(() => logstash.lines.length > 200);
    const port = logstash.port;
    await logstash.stop();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await logstash.start(port);
    const run = await child;
    expect(run.code).toBe(0);
    // At least once: every line arrived; lines re-sent after the reconnect share their event.id.
    const docs = logstash.lines.map((l) => JSON.parse(l) as { n: number; event: { id: string } });
    expect(new Set(docs.map((d) => d.n)).size, run.stderr).toBe(2000);
    expect(new Set(docs.map((d) => d.event.id)).size).toBe(2000);
    expect(JSON.parse(logstash.lines[0] as string)).toMatchObject({
      'log.level': 'info',
      message: expect.stringMatching(/^line \d+ of tcp$/),
    });
  });
});
