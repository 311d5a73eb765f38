// pgsight/transport under hostile records and bad settings, through the public entry points: the app keeps
// running and exits normally, every record is stored once or counted, and no record changes another.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSetupArgs } from '../src/cli/index.js';
import { createQueryNormalizer } from '../src/pg/query-cache.js';
import { FakeElasticsearch } from './support/es-server.js';
import { fixture, runNode } from './support/run-node.js';

const servers: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});
const tmp = (name: string) => mkdtempSync(join(tmpdir(), `pgsight-${name}-`));
/** The hostile-records app (test/fixtures/log-hostile.mjs): a scenario, then `count` ordinary records. */
const logThrough = (scenario: string, count: number, options: Record<string, unknown>) =>
  runNode(fixture('log-hostile.mjs'), {
    args: [],
    env: {
      SCENARIO: scenario,
      COUNT: String(count),
      TRANSPORT_OPTIONS: JSON.stringify({ statusIntervalMs: 0, ...options }),
    },
  });

const docsOf = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe('hostile records', () => {
  it("a __proto__ key never reaches a prototype: every record is stored, none gains another's fields", async () => {
    const es = new FakeElasticsearch();
    await es.start();
    servers.push(es);
    const dir = tmp('hostile');
    const run = await logThrough('pollution', 200, {
      outputs: [
        { type: 'file', path: join(dir, 'app.ndjson') },
        {
          type: 'elasticsearch',
          node: es.url,
          dataStream: 'logs-hostile-test',
          spoolDir: join(dir, 'spool'),
        },
      ],
    });
    expect(run.code, run.stderr).toBe(0);
    const docs = docsOf(join(dir, 'app.ndjson'));
    expect(docs).toHaveLength(205);
    const ordinary = docs.filter((d) => String(d.message).startsWith('ordinary'));
    expect(ordinary).toHaveLength(200);
    for (const doc of ordinary) {
      const text = JSON.stringify(doc);
      for (const injected of ['"x":', 'attacker-index', 'polluted', '"y":', '"z":', 'string payload'])
        expect(text, injected).not.toContain(injected);
    }
    // The hostile keys are data, kept in the document.
    const webhook = docs.find((d) => d.message === 'webhook') as Record<string, Record<string, unknown>>;
    expect(Object.hasOwn(webhook.event as object, '__proto__')).toBe(true);
    const nested = docs.find((d) => d.message === 'nested') as Record<string, unknown>;
    expect(nested.labels).toEqual({ a_b: 1, c_d: 2 });
    // An app's own data_stream is moved aside: the stream's constant_keyword fields stay the transport's.
    const own = docs.find((d) => d.message === 'own data_stream') as Record<string, Record<string, unknown>>;
    expect(own.data_stream).toBeUndefined();
    expect(own.pino?.data_stream).toEqual({ type: 'metrics', dataset: 'x' });
    // Elasticsearch got all of them, in the configured stream.
    expect(es.count()).toBe(205);
    expect(new Set([...es.docs.values()].map((d) => d.index))).toEqual(new Set(['logs-hostile-test']));
    for (const d of es.docs.values())
      expect((d.source.data_stream as Record<string, unknown>).dataset).toBe('hostile');
  });

  it('event.dataset equals data_stream.dataset in every document; a record of its own keeps its value under pino.*', async () => {
    const es = new FakeElasticsearch();
    await es.start();
    servers.push(es);
    const dir = tmp('dataset');
    const run = await logThrough('dataset', 1, {
      service: { name: 'Ledger API' },
      outputs: [
        { type: 'file', path: join(dir, 'app.ndjson') },
        { type: 'elasticsearch', node: es.url, spoolDir: join(dir, 'spool') },
      ],
    });
    expect(run.code, run.stderr).toBe(0);
    type Doc = {
      index: string;
      message: string;
      event: Record<string, unknown>;
      data_stream: unknown;
      pino: unknown;
    };
    const docs = [...es.docs.values()].map((d) => ({ ...d.source, index: d.index })) as unknown as Doc[];
    expect(docs).toHaveLength(4);
    for (const doc of docs) {
      expect(doc.index).toBe('logs-pgsight.ledger_api-default');
      expect(doc.event.dataset).toBe('pgsight.ledger_api');
      expect(doc.data_stream).toEqual({ type: 'logs', dataset: 'pgsight.ledger_api', namespace: 'default' });
    }
    const byMessage = new Map(docs.map((d) => [d.message, d]));
    expect(byMessage.get('own dataset')?.event.action).toBe('signup');
    expect(byMessage.get('own dataset')?.pino).toEqual({ 'event.dataset': 'mine' });
    expect(byMessage.get('dotted dataset')?.pino).toEqual({ 'event.dataset': 'dotted' });
    expect(byMessage.get('dotted stream')?.pino).toEqual({
      'data_stream.dataset': 'elsewhere',
      'data_stream.namespace': 'prod',
    });
    // The file gets the same documents, without the stream's own data_stream fields.
    const lines = docsOf(join(dir, 'app.ndjson')) as unknown as Doc[];
    expect(lines.map((l) => l.event.dataset)).toEqual(Array(4).fill('pgsight.ledger_api'));
  });

  it("pino's level wins over a logged log.level, which is kept under pino.*", async () => {
    const dir = tmp('level');
    const run = await logThrough('level', 0, { outputs: [{ type: 'file', path: join(dir, 'a.ndjson') }] });
    expect(run.code).toBe(0);
    const [error, warn] = docsOf(join(dir, 'a.ndjson')) as Record<string, Record<string, unknown>>[];
    expect(error?.['log.level']).toBe('error');
    expect(error?.pino?.['log.level']).toBe('debug');
    expect(warn?.['log.level']).toBe('warn');
    expect(warn?.pino?.['log.level']).toEqual({ x: 1 });
  });

  it('a time no date can be made of is repaired, kept under pino.*, and counted', async () => {
    const dir = tmp('times');
    const run = await runNode(fixture('log-odd-times.mjs'), {
      args: [],
      env: {
        TRANSPORT_OPTIONS: JSON.stringify({
          statusIntervalMs: 0,
          outputs: [{ type: 'file', path: join(dir, 't.ndjson') }],
        }),
      },
    });
    expect(run.code).toBe(0);
    const docs = docsOf(join(dir, 't.ndjson'));
    expect(docs.map((d) => d.message)).toEqual(['nanoseconds', 'not a date', 'seconds', 'ordinary']);
    for (const doc of docs) expect(Number.isNaN(Date.parse(String(doc['@timestamp'])))).toBe(false);
    expect(docs[0]?.pino).toMatchObject({ time: 1e20 });
    expect(docs[1]?.pino).toMatchObject({ '@timestamp': 'not a date' });
    // Seconds are read as seconds: the date is today, not 1970.
    expect(Math.abs(Date.parse(String(docs[2]?.['@timestamp'])) - Date.now())).toBeLessThan(60_000);
    expect(run.stderr).toContain('repaired=2');
  });
});

describe('bad settings never crash the app', () => {
  it.each(['http://127.0.0.1:99999', 'http://[::1'])(
    'PGSIGHT_ELASTICSEARCH_URL=%s: one warning, the app runs',
    async (url) => {
      const run = await runNode(fixture('use-pg.mjs'), {
        env: { PGSIGHT_ELASTICSEARCH_URL: url, PGSIGHT_SLOW_QUERY_MS: '0' },
      });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain('done');
      expect(run.stderr.match(/PGSIGHT_ELASTICSEARCH_URL=.* is invalid/g)).toHaveLength(1);
    },
  );

  it('an output that cannot start is reported once; the others ship every record', async () => {
    const dir = tmp('spoolblock');
    writeFileSync(join(dir, 'blocked'), 'a file where the spool directory should be');
    const run = await logThrough('none', 50, {
      outputs: [
        { type: 'file', path: join(dir, 'ok.ndjson') },
        { type: 'elasticsearch', node: 'http://127.0.0.1:9', spoolDir: join(dir, 'blocked', 'spool') },
      ],
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr.match(/outputs\[1\] \(elasticsearch\) cannot start/g)).toHaveLength(1);
    expect(docsOf(join(dir, 'ok.ndjson'))).toHaveLength(50);
    expect(run.stderr).toMatch(/received=50 .*dropped=50/);
  });

  it('PGSIGHT_LOG_FILE naming a directory: one warning naming the variable, records on stdout', async () => {
    const dir = tmp('logdir');
    const run = await runNode(fixture('use-pg.mjs'), {
      env: { PGSIGHT_LOG_FILE: dir, PGSIGHT_SLOW_QUERY_MS: '0' },
    });
    expect(run.code).toBe(0);
    expect(
      run.stderr.match(/PGSIGHT_LOG_FILE=.* cannot be written \(EISDIR\); pgsight's records go to stdout/g),
    ).toHaveLength(1);
    expect(
      run.records.some((r) => (r.event as Record<string, unknown> | undefined)?.action === 'db.query.slow'),
    ).toBe(true);
  });

  it('invalid transport options are said once, and the app runs on', async () => {
    const run = await logThrough('none', 5, { summary: 'sometimes', statusIntervalMs: -1, colour: true });
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(
      /unknown option "colour".*statusIntervalMs must be a whole number.*summary must be one of/,
    );
    expect(run.stderr).toContain('nothing is shipped until they are fixed');
    expect(run.stderr).toMatch(/received=5 .*dropped=5/);
  });

  it('a data stream name Elasticsearch refuses is named with the rule it breaks', async () => {
    const load = (await import('../transports/index.js')).default;
    await expect(
      load({
        outputs: [{ type: 'elasticsearch', node: 'http://127.0.0.1:9200', dataStream: 'logs-App-default' }],
      }),
    ).rejects.toThrow(/outputs\[0\]\.dataStream must be lower case, got "logs-App-default"/);
    await expect(
      load({
        outputs: [{ type: 'elasticsearch', node: 'http://127.0.0.1:9200', dataStream: 'logs-a#b-default' }],
      }),
    ).rejects.toThrow(/must not contain/);
  });

  it('pgsight setup names every bad argument at once', () => {
    expect(() => parseSetupArgs(['--elastic', 'x', '--kibna', 'y', 'stray'])).toThrow(
      /unknown option --elastic; unexpected argument "x"; unknown option --kibna; unexpected argument "y"; unexpected argument "stray"/,
    );
  });
});

describe('the summary', () => {
  it('is quiet at a clean exit by default, and counts each output apart when something went wrong', async () => {
    const dir = tmp('summary');
    const quiet = await logThrough('none', 3, { outputs: [{ type: 'file', path: join(dir, 'q.ndjson') }] });
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).not.toContain('pgsight/transport:');
    const down = await logThrough('none', 3, {
      closeTimeoutMs: 500,
      outputs: [
        { type: 'file', path: join(dir, 'd.ndjson') },
        {
          type: 'elasticsearch',
          node: 'http://127.0.0.1:9',
          dataStream: 'logs-sum-test',
          spoolDir: join(dir, 'spool'),
        },
      ],
    });
    expect(down.stderr).toMatch(
      /received=3 unparsed=0; file \S+: shipped=3 .*; elasticsearch logs-sum-test: shipped=0 .*spooled=3/,
    );
  });
});

describe('a torn spool', () => {
  it('a partial last line from a kill is cut off and counted; the record before it and the next one ship', async () => {
    const es = new FakeElasticsearch();
    await es.start();
    servers.push(es);
    const dir = tmp('torn');
    const spool = join(dir, 'spool', 'logs-torn-test');
    mkdirSync(spool, { recursive: true });
    const good = JSON.stringify({
      '@timestamp': new Date().toISOString(),
      message: 'spooled before the kill',
      event: {},
    });
    writeFileSync(
      join(spool, '000000000001.ndjson'),
      `{"id":"old-1","doc":${good}}\n{"id":"old-2","doc":{"@times`,
    );
    const run = await logThrough('none', 1, {
      outputs: [
        {
          type: 'elasticsearch',
          node: es.url,
          dataStream: 'logs-torn-test',
          spoolDir: join(dir, 'spool'),
          flushIntervalMs: 50,
        },
      ],
    });
    expect(run.code, run.stderr).toBe(0);
    const messages = [...es.docs.values()].map((d) => d.source.message).sort();
    expect(messages).toEqual(['ordinary 0', 'spooled before the kill']);
    expect(run.stderr).toMatch(/dropped=1/);
  });
});

describe('the query cache', () => {
  it('is bounded in characters as well as entries', () => {
    const normalize = createQueryNormalizer(1_000_000, 64 * 1024);
    const first = normalize(`SELECT 0 ${'x'.repeat(1000)}`);
    expect(normalize(`SELECT 0 ${'x'.repeat(1000)}`)).toBe(first); // cached
    for (let i = 1; i < 200; i++) normalize(`SELECT ${i} ${'x'.repeat(1000)}`);
    // 200 statements of 1 KB do not fit in 64 K characters: the oldest went.
    expect(normalize(`SELECT 0 ${'x'.repeat(1000)}`)).not.toBe(first);
  });
});
