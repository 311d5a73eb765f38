// The Kibana dashboards and Elasticsearch assets in dashboards/: built from their sources, valid for a
// Kibana 8.11+ import (offline validator), mapped explicitly, and charting fields the transport really emits.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { staleAssets } from '../dashboards/src/build.ts';
import { DATASET_PREFIX } from '../transports/index.js';
import { fixture, runNode } from './support/run-node.js';
import { type FieldTypes, flattenMapping, parseKql, validateNdjson } from './support/saved-objects.js';

const dir = join(import.meta.dirname, '..', 'dashboards');
const json = (path: string) => JSON.parse(readFileSync(join(dir, path), 'utf8'));
const files = readdirSync(dir).filter((f) => f.endsWith('.ndjson'));
const componentTemplate = json('elasticsearch/component-template.json');
const indexTemplate = json('elasticsearch/index-template.json');
const ilmPolicy = json('elasticsearch/ilm-policy.json');
const mapping: FieldTypes = flattenMapping(componentTemplate.template.mappings.properties);

const validate = (file: string, text = readFileSync(join(dir, file), 'utf8')) =>
  validateNdjson(text, mapping, file);

/** Every field path a document has (`a.b.c`), dotted top-level keys (`log.level`) included. */
/** Every field path of a document; an array of objects (db.query.blocked_by) adds its members' paths, as Elasticsearch indexes them. */
function paths(doc: Record<string, unknown>, prefix = '', out = new Set<string>()): Set<string> {
  for (const [key, value] of Object.entries(doc)) {
    const path = prefix + key;
    const objects = Array.isArray(value) ? value.filter((v) => v !== null && typeof v === 'object') : [];
    if (value !== null && typeof value === 'object' && !Array.isArray(value))
      paths(value as Record<string, unknown>, `${path}.`, out);
    else if (objects.length > 0) for (const member of objects) paths(member, `${path}.`, out);
    else out.add(path);
  }
  return out;
}

describe('built files', () => {
  it('are up to date with their sources (npm run dashboards)', () => {
    expect(staleAssets()).toEqual([]);
  });

  it('are one file per dashboard, each carrying its data view and the three controls', () => {
    expect(files.sort()).toEqual([
      'pgsight-postgresql-queries.ndjson',
      'pgsight-service-overview.ndjson',
      'pgsight-transactions.ndjson',
    ]);
    for (const file of files) {
      const { objects } = validate(file);
      expect(objects.filter((o) => o.type === 'dashboard')).toHaveLength(1);
      expect(objects.find((o) => o.type === 'index-pattern')?.id).toBe('pgsight-logs');
      const board = objects.find((o) => o.type === 'dashboard') as { attributes: Record<string, string> };
      const controls = JSON.parse(
        (board.attributes.controlGroupInput as unknown as { panelsJSON: string }).panelsJSON,
      );
      expect(
        Object.values(controls).map(
          (c) => (c as { explicitInput: { fieldName: string } }).explicitInput.fieldName,
        ),
      ).toEqual(['service.name', 'service.environment', 'db.namespace']);
    }
  });
});

describe('offline validator', () => {
  it.each(files)('%s: every check passes', (file) => {
    expect(validate(file).problems).toEqual([]);
  });

  it('fails on what a real import or render would trip on', () => {
    const file = 'pgsight-postgresql-queries.ndjson';
    const lines = readFileSync(join(dir, file), 'utf8').trim().split('\n');
    const edit = (pick: (o: Record<string, any>) => boolean, change: (o: Record<string, any>) => void) =>
      lines
        .map((line) => {
          const o = JSON.parse(line);
          if (pick(o)) change(o);
          return JSON.stringify(o);
        })
        .join('\n');
    const isBoard = (o: Record<string, any>) => o.type === 'dashboard';
    const isTable = (o: Record<string, any>) => o.id === 'pgsight-queries-top-fingerprints';
    const cases: [string, string, RegExp][] = [
      ['a bad line', `${lines.join('\n')}\n{"type":`, /line \d+: does not parse/],
      [
        'a 9.x stamp',
        edit(isBoard, (o) => (o.typeMigrationVersion = '10.3.0')),
        /typeMigrationVersion 10.3.0/,
      ],
      [
        'an object where a string belongs',
        edit(isBoard, (o) => (o.attributes.panelsJSON = [])),
        /panelsJSON must be a JSON string/,
      ],
      [
        'overlapping panels',
        edit(isBoard, (o) => {
          const panels = JSON.parse(o.attributes.panelsJSON);
          panels[1].gridData.x = 10;
          o.attributes.panelsJSON = JSON.stringify(panels);
        }),
        /overlaps another panel/,
      ],
      [
        'a dangling reference',
        edit(isBoard, (o) => (o.references[0].id = 'pgsight-gone')),
        /is not in the file/,
      ],
      [
        'a layer without its data view',
        edit(isTable, (o) => (o.references = [])),
        /layer .* has no data view reference/,
      ],
      [
        'an unmapped field',
        edit(isTable, (o) => {
          o.attributes.state.datasourceStates.formBased.layers[`layer-${o.id}`].columns.total.sourceField =
            'db.rows';
        }),
        /field db.rows \(sum\) is not in the explicit mapping/,
      ],
      [
        'terms on a text field',
        edit(isTable, (o) => {
          o.attributes.state.datasourceStates.formBased.layers[
            `layer-${o.id}`
          ].columns.statement.sourceField = 'db.query.text';
        }),
        /field db.query.text is text, which terms cannot use/,
      ],
      ['a KQL typo', edit(isTable, (o) => (o.attributes.state.query.query = 'event.action : (')), /KQL/],
    ];
    for (const [what, text, expected] of cases) {
      const { problems } = validate(file, text);
      expect(problems.join('\n'), what).toMatch(expected);
    }
  });

  it('reads KQL as Kibana does', () => {
    expect(parseKql('event.action : ("db.query.slow" or "db.query.error") and not error.type : *')).toEqual([
      { field: 'event.action', op: ':' },
      { field: 'error.type', op: ':' },
    ]);
    expect(parseKql('http.response.status_code >= 500')).toEqual([
      { field: 'http.response.status_code', op: '>=' },
    ]);
    expect(parseKql('')).toEqual([]);
    expect(() => parseKql('a : b c')).toThrow(/KQL/);
  });
});

describe('Elasticsearch assets', () => {
  it('index template: the data view pattern, above the built-in logs template, with the ILM policy', () => {
    expect(indexTemplate.index_patterns).toEqual(['logs-pgsight.*-*']);
    expect(indexTemplate.priority).toBeGreaterThan(100);
    expect(indexTemplate.data_stream).toEqual({});
    expect(indexTemplate.composed_of).toContain('pgsight-mappings');
    expect(indexTemplate.allow_auto_create).toBe(true);
    // The data view shows event.duration with its unit (12.5 ms), not a bare number.
    for (const file of [
      'pgsight-postgresql-queries.ndjson',
      'pgsight-service-overview.ndjson',
      'pgsight-transactions.ndjson',
    ])
      expect(readFileSync(join(dir, file), 'utf8')).toContain('\\"showSuffix\\":true');
    expect(indexTemplate.template.settings.index.lifecycle.name).toBe('pgsight-logs');
    for (const file of files) {
      const view = validate(file).objects.find((o) => o.type === 'index-pattern') as {
        attributes: { title: string };
      };
      expect(view.attributes.title).toBe(indexTemplate.index_patterns[0]);
    }
    // The stream the transport writes by default falls under the template, and is a valid data stream name.
    const stream = `logs-${DATASET_PREFIX}ledger-default`;
    expect(stream).toMatch(/^logs-pgsight\.[^-]+-[^-]+$/);
    expect(mapping.get('data_stream.dataset')).toBe('constant_keyword');
  });

  it('ILM policy has a delete phase', () => {
    expect(ilmPolicy.policy.phases.delete.actions).toHaveProperty('delete');
  });

  it('maps durations as long, SQLSTATEs as keyword, and the statement as text with a long keyword sub-field', () => {
    expect(mapping.get('event.duration')).toBe('long');
    expect(mapping.get('db.response.status_code')).toBe('keyword');
    expect(mapping.get('error.code')).toBe('keyword');
    expect(mapping.get('db.query.text')).toBe('text');
    expect(mapping.get('db.query.text.keyword')).toBe('keyword');
    expect(
      componentTemplate.template.mappings.properties.db.properties.query.properties.text.fields.keyword
        .ignore_above,
    ).toBeGreaterThanOrEqual(4096);
  });
});

describe('the fields the dashboards chart', () => {
  const docs: Record<string, unknown>[] = [];
  beforeAll(async () => {
    const logs = mkdtempSync(join(tmpdir(), 'pgsight-dashboards-'));
    const run = await runNode(fixture('dashboard-sample.mjs'), {
      env: {
        NODE_ENV: 'production',
        OTEL_SERVICE_NAME: 'ledger',
        APP_LOG: join(logs, 'app.ndjson'),
        PGSIGHT_LOG_FILE: join(logs, 'pgsight.ndjson'),
        PGSIGHT_LOG_LEVEL: 'debug',
        PGSIGHT_SLOW_QUERY_MS: '20',
        PGSIGHT_TX_WARN_MS: '200',
        PGSIGHT_TX_IDLE_MS: '50',
        PGSIGHT_POOL_WAIT_MS: '50',
      },
    });
    expect(run.code, run.stderr).toBe(0);
    for (const file of ['app.ndjson', 'pgsight.ndjson'])
      for (const line of readFileSync(join(logs, file), 'utf8').trim().split('\n'))
        docs.push(JSON.parse(line));
  });

  it('are all present in what the transport emits for a slow query, a retry, a request and an error', () => {
    const emitted = new Set(docs.flatMap((d) => [...paths(d)]));
    const used = new Set(files.flatMap((f) => validate(f).fields.map((u) => u.field)));
    // A multi-field (db.query.text.keyword) is indexed from its parent.
    const missing = [...used].filter((f) => !emitted.has(f) && !emitted.has(f.replace(/\.keyword$/, '')));
    expect(missing).toEqual([]);
    expect(used.size).toBeGreaterThan(15);
  });

  it('have the types the mapping gives them', () => {
    const fieldOf = (doc: Record<string, unknown>, path: string) =>
      path in doc
        ? doc[path]
        : path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)?.[k], doc);
    const actions = new Set(docs.map((d) => fieldOf(d, 'event.action')));
    expect(actions).toEqual(
      new Set([
        undefined, // application records
        'db.query.slow',
        'db.query.error',
        'db.transaction.retry',
        'db.transaction.end',
        'db.transaction.idle',
        'db.transaction.long',
        'db.query.n_plus_one',
        'db.pool.wait',
      ]),
    );
    for (const doc of docs) {
      const duration = fieldOf(doc, 'event.duration');
      if (duration !== undefined) expect(Number.isInteger(duration)).toBe(true);
      const sqlState = fieldOf(doc, 'db.response.status_code');
      if (sqlState !== undefined) expect(sqlState).toMatch(/^[0-9A-Z]{5}$/);
      const status = fieldOf(doc, 'http.response.status_code');
      if (status !== undefined) expect(typeof status).toBe('number');
      const attempt = fieldOf(doc, 'db.transaction.attempt');
      if (attempt !== undefined) expect(Number.isInteger(attempt)).toBe(true);
    }
    expect(
      docs
        .map((d) => fieldOf(d, 'db.transaction.outcome'))
        .filter(Boolean)
        .sort(),
    ).toEqual(['committed', 'committed', 'committed', 'retries_exhausted']);
    expect(docs.some((d) => fieldOf(d, 'http.response.status_code') === 500)).toBe(true);
  });
});
