/**
 * The Elasticsearch assets the dashboards need: an ILM policy with a delete phase, a component template with
 * explicit mappings for every field a dashboard uses (so panels work before the first document, and types
 * never depend on what arrived first), and an index template for pgsight's data streams above the built-in
 * `logs` template (priority 100; two templates of equal priority with overlapping patterns are refused).
 *
 * The built-in component templates are composed when present (ecs@mappings for every other ECS field) and
 * skipped when not: their names changed during 8.x, and pgsight's own mappings do not depend on them.
 */
import { DATA_VIEW_PATTERN } from './kibana.ts';

export const MIN_ELASTICSEARCH = '8.11.0';
export const ILM_POLICY = 'pgsight-logs';
export const COMPONENT_TEMPLATE = 'pgsight-mappings';
/**
 * Its name before: `@` is Elasticsearch's own (its built-in templates are `logs@mappings`, `ecs@mappings`, ...;
 * the index templates docs ask users not to use it), so `pgsight setup` removes this one once the index
 * template no longer composes it.
 */
export const RETIRED_COMPONENT_TEMPLATES = ['pgsight@mappings'];
export const INDEX_TEMPLATE = 'logs-pgsight';
/**
 * The built-in component templates of logs streams the index template composes, by the names Elasticsearch
 * 8.12 gave them (8.12.0 release notes, elastic/elasticsearch#99975), and the names they had before, which
 * `pgsight setup` composes on 8.11: an index template that lists a missing built-in under
 * `ignore_missing_component_templates` is accepted and silently gets none of its content.
 */
export const BUILTIN_COMPONENT_TEMPLATES = {
  renamedIn: '8.12.0',
  formerNames: {
    'logs@mappings': 'logs-mappings',
    'logs@settings': 'logs-settings',
    'ecs@mappings': 'ecs@dynamic_templates',
  },
};
const BUILTINS = Object.keys(BUILTIN_COMPONENT_TEMPLATES.formerNames);
/** The user's own additions, composed last when it exists (the `@custom` convention of Elastic's templates). */
export const CUSTOM_TEMPLATE = 'logs-pgsight@custom';

export const ilmPolicy = {
  policy: {
    _meta: {
      managed_by: 'pgsight',
      description: 'pgsight logs: roll over daily or at 50 GB, delete after 30 days',
    },
    phases: {
      hot: { min_age: '0ms', actions: { rollover: { max_primary_shard_size: '50gb', max_age: '1d' } } },
      delete: { min_age: '30d', actions: { delete: {} } },
    },
  },
};

const keyword = { type: 'keyword' } as const;
const long = { type: 'long' } as const;
const integer = { type: 'integer' } as const;
const text = { type: 'match_only_text' } as const;

/**
 * Dotted field name → mapping. Durations are `long` nanoseconds (ECS `event.duration`); SQLSTATEs are
 * `keyword` (`40001` is not a number); `db.query.text` is text with a keyword sub-field for grouping. The
 * normalized statement is usually short, but ORMs write long SQL: 8191 characters keep the sub-field under
 * Lucene's 32766-byte term limit for any UTF-8 text.
 */
export const FIELDS: Record<string, Record<string, unknown>> = {
  '@timestamp': { type: 'date' },
  message: text,
  'ecs.version': keyword,
  'log.level': keyword,
  'log.logger': keyword,
  'log.origin.file.name': keyword,
  'log.origin.file.line': integer,
  'log.origin.function': keyword,
  'code.stacktrace': { type: 'wildcard' },
  'service.name': keyword,
  'service.version': keyword,
  'service.environment': keyword,
  'event.id': keyword,
  'event.dataset': keyword,
  'event.action': keyword,
  'event.kind': keyword,
  'event.category': keyword,
  'event.outcome': keyword,
  'event.duration': long,
  'process.pid': long,
  'host.hostname': keyword,
  'trace.id': keyword,
  'span.id': keyword,
  'transaction.id': keyword,
  'error.type': keyword,
  'error.message': text,
  'error.code': keyword,
  'error.stack_trace': { type: 'wildcard' },
  'http.request.id': keyword,
  'http.request.method': keyword,
  'http.response.status_code': long,
  'http.response.body.bytes': long,
  'url.path': keyword,
  'url.original': { type: 'wildcard' },
  'client.ip': { type: 'ip' },
  'user_agent.original': keyword,
  'server.address': keyword,
  'server.port': long,
  'db.system.name': keyword,
  'db.namespace': keyword,
  'db.operation.name': keyword,
  'db.collection.name': keyword,
  'db.query.text': { type: 'text', fields: { keyword: { type: 'keyword', ignore_above: 8191 } } },
  'db.query.fingerprint': keyword,
  'db.query.summary': keyword,
  'db.query.repetitions': long,
  'db.query.server_pid': long,
  'db.query.id': keyword,
  'db.query.wait.type': keyword,
  'db.query.wait.event': keyword,
  'db.query.blocked_by.pid': long,
  'db.query.blocked_by.state': keyword,
  'db.query.blocked_by.query.text': {
    type: 'text',
    fields: { keyword: { type: 'keyword', ignore_above: 8191 } },
  },
  'db.query.blocked_by.query.fingerprint': keyword,
  'db.query.blocked_by.transaction.duration_ms': long,
  'db.query.blocked_by.application_name': keyword,
  'db.query.blocked_by.origin.file': keyword,
  'db.query.blocked_by.origin.line': integer,
  'db.query.blocked_by.origin.function': keyword,
  'db.query.plan.node_type': keyword,
  'db.query.plan.total_cost': { type: 'double' },
  'db.query.plan.rows': { type: 'double' },
  'db.query.plan.seq_scans': keyword,
  'db.query.plan.generic': { type: 'boolean' },
  'db.query.plan.truncated': { type: 'boolean' },
  // The plan itself is read, never searched: stored in _source only.
  'db.query.plan.text': { type: 'text', index: false },
  'db.query.forensics.skipped': keyword,
  'db.client.connection.wait_ms': { type: 'double' },
  'db.client.connection.pool.name': keyword,
  'db.client.connection.pool.max': integer,
  'db.client.connection.pool.idle': integer,
  'db.client.connection.pool.used': integer,
  'db.client.connection.pool.pending': integer,
  'db.client.connection.pool.folded_waits': long,
  'db.response.status_code': keyword,
  'db.transaction.name': keyword,
  'db.transaction.kind': keyword,
  'db.transaction.attempt': integer,
  'db.transaction.isolation_level': keyword,
  'db.transaction.outcome': keyword,
  'db.transaction.retry_delay_ms': long,
  'db.transaction.idle_ms': long,
  'data_stream.type': { type: 'constant_keyword' },
  'data_stream.dataset': { type: 'constant_keyword' },
  'data_stream.namespace': { type: 'constant_keyword' },
};

/** `a.b.c` names → Elasticsearch's nested `properties` objects. */
export function toProperties(fields: Record<string, Record<string, unknown>>): Record<string, unknown> {
  const root: Record<string, Record<string, unknown>> = {};
  for (const [name, mapping] of Object.entries(fields)) {
    const parts = name.split('.');
    let level = root;
    for (const part of parts.slice(0, -1)) {
      level[part] ??= { properties: {} };
      level = (level[part] as { properties: Record<string, Record<string, unknown>> }).properties;
    }
    level[parts[parts.length - 1] as string] = mapping;
  }
  return root;
}

export const componentTemplate = {
  template: {
    mappings: {
      // Strings that look like dates stay strings; pgsight's own fields are all mapped above.
      date_detection: false,
      properties: toProperties(FIELDS),
    },
  },
  _meta: { managed_by: 'pgsight', description: "Explicit mappings for every field pgsight's dashboards use" },
};

export const indexTemplate = {
  index_patterns: [DATA_VIEW_PATTERN],
  data_stream: {},
  priority: 200,
  composed_of: [...BUILTINS, COMPONENT_TEMPLATE, CUSTOM_TEMPLATE],
  ignore_missing_component_templates: [...BUILTINS, CUSTOM_TEMPLATE],
  // Nested, as Elasticsearch returns settings: `setup` compares what is installed with this, key by key.
  // As the built-in logs@template does: a cluster whose action.auto_create_index restricts automatic creation
  // still creates pgsight's streams on their first document.
  allow_auto_create: true,
  template: { settings: { index: { lifecycle: { name: ILM_POLICY } } } },
  _meta: { managed_by: 'pgsight', description: 'pgsight data streams: logs-pgsight.<service>-<namespace>' },
};

/** File name (under dashboards/elasticsearch/) → asset, and the API path `setup` writes it to. */
export const ELASTICSEARCH_ASSETS = [
  {
    file: 'ilm-policy.json',
    kind: 'ilm_policy',
    name: ILM_POLICY,
    path: `/_ilm/policy/${ILM_POLICY}`,
    body: ilmPolicy,
  },
  {
    file: 'component-template.json',
    kind: 'component_template',
    name: COMPONENT_TEMPLATE,
    path: `/_component_template/${COMPONENT_TEMPLATE}`,
    body: componentTemplate,
  },
  {
    file: 'index-template.json',
    kind: 'index_template',
    name: INDEX_TEMPLATE,
    path: `/_index_template/${INDEX_TEMPLATE}`,
    body: indexTemplate,
  },
];
