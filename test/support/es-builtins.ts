// What an Elasticsearch cluster brings of its own for `logs-*-*` data streams, by version, and how index
// templates compose: the stand-in's model for `pgsight setup` checks.
//
// - Built-in component templates. Elasticsearch 8.12 renamed them to the `@` naming convention (8.12.0
//   release notes, "Rename component templates and pipelines according to the new naming conventions",
//   elastic/elasticsearch#99975): logs-mappings → logs@mappings, logs-settings → logs@settings,
//   ecs@dynamic_templates → ecs@mappings. Before 8.12 the new names do not exist; an index template that
//   lists them under `ignore_missing_component_templates` is accepted and silently gets none of their content.
//   The content kept here is what a check reads: the `data_stream.*` constant keywords and `date_detection`
//   (logs mappings), the default ingest pipeline and `ignore_malformed` (logs settings), ECS dynamic templates.
// - The built-in index template `logs` (priority 100, `logs-*-*`, a data stream template) composing them.
// - `POST /_index_template/_simulate_index/<name>`: the settings and mappings a new index of that name gets,
//   component templates merged in order, then the index template's own
//   (https://www.elastic.co/guide/en/elasticsearch/reference/current/indices-simulate-index.html).
// - The refusal of an index template that would leave existing data streams matching no data stream template
//   (MetadataIndexTemplateService.validateDataStreamsStillReferenced, whose message is reproduced).

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function atLeast(version: string, min: string): boolean {
  const a = version.split(/[.-]/).map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

/** Built-in component templates of a cluster of `version`, by name, as `GET _component_template` shows them. */
export function builtinComponentTemplates(version: string): Map<string, Json> {
  const renamed = atLeast(version, '8.12.0');
  const constant = { type: 'constant_keyword' };
  return new Map<string, Json>([
    [
      renamed ? 'logs@mappings' : 'logs-mappings',
      {
        template: {
          mappings: {
            date_detection: false,
            properties: {
              data_stream: { properties: { type: constant, dataset: constant, namespace: constant } },
            },
          },
        },
        _meta: { managed: true },
      },
    ],
    [
      renamed ? 'logs@settings' : 'logs-settings',
      {
        template: {
          settings: {
            index: {
              lifecycle: { name: 'logs' },
              default_pipeline: renamed ? 'logs@default-pipeline' : 'logs-default-pipeline',
              mapping: { ignore_malformed: 'true' },
            },
          },
        },
        _meta: { managed: true },
      },
    ],
    [
      renamed ? 'ecs@mappings' : 'ecs@dynamic_templates',
      {
        template: {
          mappings: {
            dynamic_templates: [{ ecs_timestamp: { match: '@timestamp', mapping: { type: 'date' } } }],
          },
        },
        _meta: { managed: true },
      },
    ],
  ]);
}

/** The built-in `logs` index template of a cluster of `version`. */
export function builtinLogsTemplate(version: string): Json {
  const names = [...builtinComponentTemplates(version).keys()];
  return {
    index_patterns: ['logs-*-*'],
    priority: 100,
    data_stream: { hidden: false, allow_custom_routing: false },
    composed_of: [...names, 'logs@custom'],
    ignore_missing_component_templates: ['logs@custom'],
    allow_auto_create: true,
    _meta: { managed: true },
  };
}

const globMatches = (pattern: string, name: string) =>
  new RegExp(
    `^${pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  ).test(name);

/** The highest-priority index template matching `index` (the last one wins a tie), with its name. */
export function matchingTemplate(templates: Map<string, Json>, index: string): [string, Json] | undefined {
  let best: [string, Json] | undefined;
  for (const entry of templates) {
    const patterns = (entry[1].index_patterns as string[] | undefined) ?? [];
    if (!patterns.some((p) => globMatches(p, index))) continue;
    if (!best || Number(entry[1].priority ?? 0) >= Number(best[1].priority ?? 0)) best = entry;
  }
  return best;
}

function deepMerge(target: Json, source: Json): Json {
  for (const [key, value] of Object.entries(source)) {
    const existing = target[key];
    if (isObject(existing) && isObject(value)) deepMerge(existing, value);
    else target[key] = structuredClone(value);
  }
  return target;
}

/** What `_simulate_index` answers for `index`: the composed settings and mappings, or undefined (no template). */
export function simulateIndex(
  templates: Map<string, Json>,
  components: Map<string, Json>,
  index: string,
): Json | undefined {
  const match = matchingTemplate(templates, index);
  if (!match) return undefined;
  const [, template] = match;
  const settings: Json = {};
  const mappings: Json = {};
  for (const name of (template.composed_of as string[] | undefined) ?? []) {
    const component = components.get(name)?.template;
    if (!isObject(component)) continue; // listed under ignore_missing_component_templates
    if (isObject(component.settings)) deepMerge(settings, component.settings);
    if (isObject(component.mappings)) deepMerge(mappings, component.mappings);
  }
  const own = isObject(template.template) ? template.template : {};
  if (isObject(own.settings)) deepMerge(settings, own.settings);
  if (isObject(own.mappings)) deepMerge(mappings, own.mappings);
  return { template: { settings, mappings, aliases: {} }, overlapping: [] };
}

/**
 * Elasticsearch's refusal of a new or changed index template that would leave existing data streams matching
 * no data stream template, or undefined when it is accepted.
 */
export function unreferencedStreamsProblem(
  templates: Map<string, Json>,
  name: string,
  candidate: Json,
  streams: Iterable<string>,
): string | undefined {
  const next = new Map(templates);
  next.set(name, candidate);
  const lost = [...streams].filter(
    (stream) =>
      matchingTemplate(templates, stream)?.[1].data_stream !== undefined &&
      matchingTemplate(next, stream)?.[1].data_stream === undefined,
  );
  if (lost.length === 0) return undefined;
  const patterns = `[${((candidate.index_patterns as string[] | undefined) ?? []).join(', ')}]`;
  return (
    `composable template [${name}] with index patterns ${patterns}, priority [${String(candidate.priority ?? null)}] ` +
    `${candidate.data_stream === undefined ? 'and no data stream configuration ' : ''}` +
    `would cause data streams [${lost.join(', ')}] to no longer match a data stream template`
  );
}
