// `npx pgsight setup`, run as users run it (the package's bin in a child process), against local servers
// that speak the Elasticsearch and Kibana endpoints it calls. The requests they record are what is asserted.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeElasticsearch } from './support/es-server.js';
import { FakeKibana } from './support/kibana-server.js';
import { field, fixture, root, runNode } from './support/run-node.js';

const dashboards = join(root, 'dashboards');
const bin = join(root, 'dist', 'src', 'cli', 'index.js');
const manifest = JSON.parse(readFileSync(join(dashboards, 'manifest.json'), 'utf8')) as {
  dashboards: { file: string; id: string }[];
};
const objectsOf = (file: string) =>
  readFileSync(join(dashboards, file), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string; id: string });
const allObjects = new Set(
  manifest.dashboards.flatMap((d) => objectsOf(d.file).map((o) => `${o.type}/${o.id}`)),
);

const stoppers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(stoppers.splice(0).map((stop) => stop()));
});

async function servers() {
  const es = new FakeElasticsearch();
  const kibana = new FakeKibana();
  await es.start();
  await kibana.start();
  stoppers.push(
    () => es.stop(),
    () => kibana.stop(),
  );
  return { es, kibana };
}

const setup = (...args: string[]) => runNode(bin, { args: [], scriptArgs: ['setup', ...args] });
const both = (es: FakeElasticsearch, kibana: FakeKibana) => [
  '--elasticsearch',
  es.url,
  '--kibana',
  kibana.url,
];
const writes = (es: FakeElasticsearch) => es.requests.filter((r) => r.startsWith('PUT '));
const imports = (kibana: FakeKibana) => kibana.requests.filter((r) => r.path.includes('_import'));

/** `lines` records from an app through the transport into `logs-pgsight.app-default` on `es`. */
const shipLines = (es: FakeElasticsearch, lines: number) =>
  runNode(fixture('log-burst.mjs'), {
    args: [],
    env: {
      TRANSPORT_OPTIONS: JSON.stringify({
        statusIntervalMs: 0,
        outputs: [
          {
            type: 'elasticsearch',
            node: es.url,
            dataStream: 'logs-pgsight.app-default',
            spoolDir: mkdtempSync(join(tmpdir(), 'pgsight-spool-')),
          },
        ],
      }),
      LINES: String(lines),
    },
  });

describe('pgsight setup', () => {
  it('installs the Elasticsearch assets and imports every dashboard, with kbn-xsrf and overwrite=true', async () => {
    const { es, kibana } = await servers();
    kibana.version = '8.11.0'; // the oldest supported: every version stamp must be acceptable to it
    es.version = '8.11.0';
    const run = await setup(...both(es, kibana));
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(writes(es)).toEqual([
      'PUT /_ilm/policy/pgsight-logs',
      'PUT /_component_template/pgsight-mappings',
      'PUT /_index_template/logs-pgsight',
    ]);
    expect(es.indexTemplates.get('logs-pgsight')?.index_patterns).toEqual(['logs-pgsight.*-*']);
    expect(imports(kibana)).toHaveLength(3);
    for (const request of imports(kibana)) {
      expect(request.path).toBe('/api/saved_objects/_import?overwrite=true');
      expect(request.headers['kbn-xsrf']).toBeDefined();
      expect(request.headers['content-type']).toMatch(/^multipart\/form-data/);
    }
    expect(new Set(kibana.objects().keys())).toEqual(allObjects);
    // One progress line per step.
    expect(run.stdout.trim().split('\n')).toEqual([
      `pgsight setup: Elasticsearch ${es.url}: version 8.11.0`,
      'pgsight setup: ILM policy pgsight-logs: created',
      'pgsight setup: component template pgsight-mappings: created',
      'pgsight setup: index template logs-pgsight (composing logs-mappings, logs-settings, ecs@dynamic_templates, pgsight-mappings, logs-pgsight@custom: the names 8.11.0 gives its built-in logs templates): created',
      `pgsight setup: Kibana ${kibana.url}: version 8.11.0`,
      expect.stringMatching(/^pgsight setup: dashboard \[pgsight\] Service overview \(.*\): imported$/),
      expect.stringMatching(/^pgsight setup: dashboard \[pgsight\] PostgreSQL queries \(.*\): imported$/),
      expect.stringMatching(/^pgsight setup: dashboard \[pgsight\] Transactions \(.*\): imported$/),
      'pgsight setup: done',
    ]);
  });

  it('is idempotent: a second run writes nothing', async () => {
    const { es, kibana } = await servers();
    expect((await setup(...both(es, kibana))).code).toBe(0);
    const stored = new Map([...kibana.objects()].map(([key, o]) => [key, o.updatedAt]));
    es.requests.length = 0;
    kibana.requests.length = 0;
    const again = await setup(...both(es, kibana));
    expect(again.code).toBe(0);
    expect(writes(es)).toEqual([]);
    expect(imports(kibana)).toEqual([]);
    expect(new Map([...kibana.objects()].map(([key, o]) => [key, o.updatedAt]))).toEqual(stored);
    expect(again.stdout.match(/: unchanged$/gm)).toHaveLength(6);
  });

  it('rewrites only what differs from the shipped assets', async () => {
    const { es, kibana } = await servers();
    expect((await setup(...both(es, kibana))).code).toBe(0);
    const phases = es.ilmPolicies.get('pgsight-logs')?.policy.phases as Record<string, { min_age: string }>;
    phases.delete = { ...phases.delete, min_age: '7d' };
    kibana.objects().delete('lens/pgsight-tx-attempts');
    es.requests.length = 0;
    kibana.requests.length = 0;
    const run = await setup(...both(es, kibana));
    expect(run.code).toBe(0);
    expect(writes(es)).toEqual(['PUT /_ilm/policy/pgsight-logs']);
    expect(run.stdout).toContain('ILM policy pgsight-logs: updated');
    expect(imports(kibana)).toHaveLength(1);
    expect(run.stdout).toMatch(/\[pgsight\] Transactions .*: imported/);
    expect(kibana.objects().has('lens/pgsight-tx-attempts')).toBe(true);
  });

  it('--dry-run prints what it would do and changes nothing', async () => {
    const { es, kibana } = await servers();
    const run = await setup(...both(es, kibana), '--dry-run');
    expect(run.code).toBe(0);
    expect(writes(es)).toEqual([]);
    expect(imports(kibana)).toEqual([]);
    expect(run.stdout).toContain('ILM policy pgsight-logs: would be created (dry run)');
    expect(run.stdout.match(/would be imported \(dry run\)$/gm)).toHaveLength(3);
    expect(run.stdout).toContain('done (dry run: nothing was changed)');
  });

  it('sends the API key, or basic credentials, to both; imports into a Kibana space', async () => {
    const { es, kibana } = await servers();
    es.authorization = 'ApiKey a2V5OnNlY3JldA==';
    kibana.authorization = 'ApiKey a2V5OnNlY3JldA==';
    const withKey = await setup(...both(es, kibana), '--api-key', 'a2V5OnNlY3JldA==', '--space', 'ops');
    expect(withKey.code, withKey.stderr).toBe(0);
    expect(kibana.objects('ops').size).toBe(allObjects.size);
    expect(kibana.objects('default').size).toBe(0);
    const basic = `Basic ${Buffer.from('elastic:changeme').toString('base64')}`;
    es.authorization = basic;
    kibana.authorization = basic;
    const withUser = await setup(
      ...both(es, kibana),
      '--user',
      'elastic',
      '--password',
      'changeme',
      '--dry-run',
    );
    expect(withUser.code, withUser.stderr).toBe(0);
  });

  it('migrates from the component template named with @ (reserved by Elasticsearch) to pgsight-mappings', async () => {
    const { es, kibana } = await servers();
    // What an earlier version left: its component template, composed by its index template.
    es.componentTemplates.set('pgsight@mappings', { template: { mappings: { properties: {} } } });
    es.indexTemplates.set('logs-pgsight', {
      index_patterns: ['logs-pgsight.*-*'],
      composed_of: ['pgsight@mappings'],
    });
    const run = await setup(...both(es, kibana));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('component template pgsight@mappings: removed (replaced by another name)');
    expect(es.componentTemplates.has('pgsight@mappings')).toBe(false);
    expect(es.componentTemplates.has('pgsight-mappings')).toBe(true);
    const again = await setup(...both(es, kibana));
    expect(again.stdout).not.toContain('removed');
  });

  it("on a cluster that restricts auto-creation, pgsight's streams are still created (allow_auto_create)", async () => {
    const { es, kibana } = await servers();
    es.autoCreateIndex = false;
    // An index template without allow_auto_create above the built-in `logs` one (which has it), as pgsight's
    // own was before: Elasticsearch refuses to create the stream.
    es.indexTemplates.set('logs-pgsight', {
      index_patterns: ['logs-pgsight.*-*'],
      priority: 200,
      data_stream: {},
    });
    const refused = await shipLines(es, 1);
    expect(refused.stderr).toMatch(/dead_lettered=1/);
    expect(es.count()).toBe(0);
    expect((await setup('--elasticsearch', es.url)).code).toBe(0);
    const run = await shipLines(es, 5);
    expect(run.code).toBe(0);
    expect(es.count()).toBe(5);
    expect(kibana.requests).toHaveLength(0);
  });

  it.each([
    ['8.11.0', ['logs-mappings', 'logs-settings', 'ecs@dynamic_templates'], 'logs-default-pipeline'],
    ['8.15.0', ['logs@mappings', 'logs@settings', 'ecs@mappings'], 'logs@default-pipeline'],
  ])(
    'on Elasticsearch %s, composes the built-in logs templates by the names that version has',
    async (version, builtins, pipeline) => {
      const { es } = await servers();
      es.version = version;
      const run = await setup('--elasticsearch', es.url);
      expect(run.code, run.stderr).toBe(0);
      expect(es.indexTemplates.get('logs-pgsight')?.composed_of).toEqual([
        ...builtins,
        'pgsight-mappings',
        'logs-pgsight@custom',
      ]);
      // What a new pgsight stream gets, as Elasticsearch's simulate API shows it: the logs settings and
      // mappings of the cluster's own templates, pgsight's mappings, and pgsight's ILM policy over the logs one.
      const response = await fetch(`${es.url}/_index_template/_simulate_index/logs-pgsight.ledger-default`, {
        method: 'POST',
      });
      const simulated = (await response.json()) as Record<string, unknown>;
      expect(field(simulated, 'template.settings.index')).toMatchObject({
        lifecycle: { name: 'pgsight-logs' },
        default_pipeline: pipeline,
        mapping: { ignore_malformed: 'true' },
      });
      const mappings = field(simulated, 'template.mappings') as Record<string, unknown>;
      expect(field(mappings, 'properties.data_stream.properties.dataset')).toEqual({
        type: 'constant_keyword',
      });
      expect(field(mappings, 'properties.db.properties.query.properties.fingerprint.type')).toBe('keyword');
      expect(mappings.dynamic_templates).toEqual(
        expect.arrayContaining([expect.objectContaining({ ecs_timestamp: expect.anything() })]),
      );
      expect(mappings.date_detection).toBe(false);
      // Run again: nothing to change.
      es.requests.length = 0;
      expect((await setup('--elasticsearch', es.url)).code).toBe(0);
      expect(writes(es)).toEqual([]);
    },
  );

  it('the stand-in refuses what Elasticsearch refuses: an @ name, and a template that would leave streams without a data stream template', async () => {
    const { es } = await servers();
    const put = (path: string, body: unknown) =>
      fetch(`${es.url}${path}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const named = await put('/_component_template/mine@mappings', { template: {} });
    expect(named.status).toBe(400);
    expect((await setup('--elasticsearch', es.url)).code).toBe(0);
    const shipped = await shipLines(es, 1);
    expect(shipped.code).toBe(0);
    const plain = await put('/_index_template/plain', {
      index_patterns: ['logs-pgsight.*-*'],
      priority: 300,
    });
    expect(plain.status).toBe(400);
    expect(((await plain.json()) as { error: { reason: string } }).error.reason).toBe(
      'composable template [plain] with index patterns [logs-pgsight.*-*], priority [300] and no data stream configuration would cause data streams [logs-pgsight.app-default] to no longer match a data stream template',
    );
  });

  it('takes credentials from the environment, so that they are not on the command line', async () => {
    const { es, kibana } = await servers();
    es.authorization = 'ApiKey ZXMta2V5';
    kibana.authorization = `Basic ${Buffer.from('kib:secret').toString('base64')}`;
    const run = await runNode(bin, {
      args: [],
      scriptArgs: ['setup', ...both(es, kibana)],
      env: { ELASTICSEARCH_API_KEY: 'ZXMta2V5', KIBANA_USERNAME: 'kib', KIBANA_PASSWORD: 'secret' },
    });
    expect(run.code, run.stderr).toBe(0);
    expect(kibana.objects().size).toBe(allObjects.size);
  });

  it('a second space: its objects get new ids from Kibana, and a second run there changes nothing', async () => {
    const { es, kibana } = await servers();
    expect((await setup(...both(es, kibana))).code).toBe(0); // the default space first
    const first = await setup(...both(es, kibana), '--space', 'ops');
    expect(first.code, first.stderr).toBe(0);
    const ops = [...kibana.objects('ops').values()];
    expect(ops).toHaveLength(allObjects.size);
    // Kibana gave every object in `ops` a new id, the shipped one kept as originId.
    expect(ops.every((o) => o.originId !== undefined && o.id !== o.originId)).toBe(true);
    const imports = () => kibana.requests.filter((r) => r.path.includes('_import')).length;
    const before = imports();
    const second = await setup(...both(es, kibana), '--space', 'ops');
    expect(second.code, second.stderr).toBe(0);
    expect(imports()).toBe(before);
    expect(second.stdout.match(/: unchanged/g)?.length).toBeGreaterThan(0);
    expect(kibana.objects('ops').size).toBe(allObjects.size);
  });
});

describe('pgsight setup errors', () => {
  const failure = (run: { code: number | null; stderr: string }) => ({
    code: run.code,
    error: /PGSIGHT_ERR_[A-Z_]+/.exec(run.stderr)?.[0],
  });

  it('unreachable: exit 3, naming what it tried', async () => {
    const { es, kibana } = await servers();
    await es.stop();
    const run = await setup(...both(es, kibana));
    expect(failure(run)).toEqual({ code: 3, error: 'PGSIGHT_ERR_SETUP_UNREACHABLE' });
    expect(run.stderr).toContain(`Elasticsearch at ${es.url}`);
    const kibanaDown = await setup('--kibana', 'http://127.0.0.1:1');
    expect(failure(kibanaDown)).toEqual({ code: 3, error: 'PGSIGHT_ERR_SETUP_UNREACHABLE' });
    expect(kibanaDown.stderr).toContain('Kibana at http://127.0.0.1:1');
  });

  it('unauthorized: exit 4, for Elasticsearch and for Kibana', async () => {
    const { es, kibana } = await servers();
    es.authorization = 'ApiKey right';
    const esRun = await setup(...both(es, kibana), '--api-key', 'wrong');
    expect(failure(esRun)).toEqual({ code: 4, error: 'PGSIGHT_ERR_SETUP_UNAUTHORIZED' });
    expect(esRun.stderr).toContain('Elasticsearch');
    kibana.authorization = 'ApiKey right';
    const kibanaRun = await setup('--kibana', kibana.url, '--api-key', 'wrong');
    expect(failure(kibanaRun)).toEqual({ code: 4, error: 'PGSIGHT_ERR_SETUP_UNAUTHORIZED' });
    expect(kibanaRun.stderr).toContain('Kibana');
  });

  it('too old: exit 5, with the version found and the one needed', async () => {
    const { es, kibana } = await servers();
    es.version = '8.10.4';
    const esRun = await setup(...both(es, kibana));
    expect(failure(esRun)).toEqual({ code: 5, error: 'PGSIGHT_ERR_SETUP_VERSION' });
    expect(esRun.stderr).toContain('Elasticsearch at');
    expect(esRun.stderr).toContain("8.10.4; pgsight's dashboards need 8.11.0");
    kibana.version = '8.9.2';
    const kibanaRun = await setup('--kibana', kibana.url);
    expect(failure(kibanaRun)).toEqual({ code: 5, error: 'PGSIGHT_ERR_SETUP_VERSION' });
    expect(imports(kibana)).toEqual([]);
  });

  it('a partial import: exit 6, naming each object that failed and why', async () => {
    const { es, kibana } = await servers();
    kibana.failIds.set('pgsight-queries-top-fingerprints', 'unsupported_type');
    const run = await setup(...both(es, kibana));
    expect(failure(run)).toEqual({ code: 6, error: 'PGSIGHT_ERR_SETUP_IMPORT' });
    expect(run.stderr).toMatch(/imported 9 of 10 objects of pgsight-postgresql-queries\.ndjson/);
    expect(run.stderr).toContain('lens pgsight-queries-top-fingerprints (unsupported_type)');
  });

  it('bad arguments: exit 2, every problem named; --help prints the usage', async () => {
    const run = await setup('--elasticsearch', 'localhost:9200', '--api-key', 'k', '--user', 'u');
    expect(failure(run)).toEqual({ code: 2, error: 'PGSIGHT_ERR_ARGUMENT_INVALID' });
    expect(run.stderr).toContain('--elasticsearch must be an http(s) URL, got "localhost:9200"');
    expect(run.stderr).toContain('--api-key and --user / --password are alternatives');
    expect(run.stderr).toContain('--user and --password go together');
    expect(failure(await setup('--kibana', 'http://k', '--bogus'))).toEqual({
      code: 2,
      error: 'PGSIGHT_ERR_ARGUMENT_INVALID',
    });
    const help = await setup('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: pgsight setup');
  });
});
