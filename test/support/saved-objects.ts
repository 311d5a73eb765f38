// An offline validator for Kibana 8.x saved-object NDJSON, checking what a real import (and then a real
// dashboard render) would trip on: parse errors, version stamps newer than the oldest supported Kibana,
// attributes that must be JSON strings, the panel grid, references that do not resolve, Lens layers without
// their data view, and fields a panel uses that the explicit mapping does not have, or has with a type that
// does not fit the operation. It knows Kibana's format, not pgsight's generator: it reads only the files.

export type FieldTypes = Map<string, string>;

/** Upper bounds of the version stamps Kibana 8.11 knows, per type; a newer one fails the import. */
const MAX_STAMPS: Record<string, string> = {
  'index-pattern': '8.0.0',
  search: '8.0.0',
  lens: '8.9.0',
  dashboard: '8.9.0',
};
const MAX_CORE = '8.8.0';
const FORBIDDEN_TOP = ['namespaces', 'updated_at', 'created_at', 'version', 'accessControl', 'originId'];
const DASHBOARD_KEYS = new Set([
  'title',
  'description',
  'kibanaSavedObjectMeta',
  'timeRestore',
  'timeFrom',
  'timeTo',
  'refreshInterval',
  'controlGroupInput',
  'panelsJSON',
  'optionsJSON',
  'hits',
  'version',
]);
const GRID_COLUMNS = 48;

const NUMERIC = new Set([
  'long',
  'integer',
  'short',
  'byte',
  'double',
  'float',
  'half_float',
  'scaled_float',
]);
const AGGREGATABLE = new Set([...NUMERIC, 'keyword', 'constant_keyword', 'ip', 'boolean', 'date']);
/** Lens operation → what its source field must be. */
const NEEDS: Record<string, (type: string) => boolean> = {
  terms: (t) => AGGREGATABLE.has(t),
  unique_count: (t) => AGGREGATABLE.has(t),
  sum: (t) => NUMERIC.has(t),
  avg: (t) => NUMERIC.has(t),
  min: (t) => NUMERIC.has(t),
  max: (t) => NUMERIC.has(t),
  median: (t) => NUMERIC.has(t),
  percentile: (t) => NUMERIC.has(t),
  range: (t) => NUMERIC.has(t),
  date_histogram: (t) => t === 'date',
};
const DATA_TYPE: Record<string, (type: string) => boolean> = {
  number: (t) => NUMERIC.has(t),
  string: (t) => t === 'keyword' || t === 'constant_keyword' || t === 'ip',
  date: (t) => t === 'date',
};

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function semverAtMost(version: unknown, max: string): boolean {
  if (typeof version !== 'string' || !/^\d+\.\d+\.\d+$/.test(version)) return false;
  const a = version.split('.').map(Number);
  const b = max.split('.').map(Number);
  for (let i = 0; i < 3; i++)
    if ((a[i] as number) !== (b[i] as number)) return (a[i] as number) < (b[i] as number);
  return true;
}

/** Elasticsearch `properties` → dotted field name → type, multi-fields included (`db.query.text.keyword`). */
export function flattenMapping(properties: Json, prefix = '', out: FieldTypes = new Map()): FieldTypes {
  for (const [name, def] of Object.entries(properties)) {
    if (!isObject(def)) continue;
    const path = prefix + name;
    if (isObject(def.properties)) flattenMapping(def.properties, `${path}.`, out);
    else out.set(path, String(def.type ?? 'object'));
    if (isObject(def.fields))
      for (const [sub, subDef] of Object.entries(def.fields))
        if (isObject(subDef)) out.set(`${path}.${sub}`, String(subDef.type));
  }
  return out;
}

// ---- KQL ---------------------------------------------------------------------------------------------------

export interface KqlField {
  field: string;
  /** ':' for a match (or exists with `*`), or a range operator. */
  op: ':' | '<' | '<=' | '>' | '>=';
}

/**
 * Parses the KQL subset dashboards use (https://www.elastic.co/guide/en/kibana/current/kuery-query.html):
 * `field : value`, `field : *`, `field : ("a" or "b")`, range operators, and / or / not, parentheses.
 * Throws on anything else; returns the fields with how each is used.
 */
export function parseKql(query: string): KqlField[] {
  const tokens = query.match(/"(?:[^"\\]|\\.)*"|<=|>=|[()<>:]|[^\s()<>:"]+/g) ?? [];
  const rest = query.replace(/"(?:[^"\\]|\\.)*"|<=|>=|[()<>:]|[^\s()<>:"]+/g, '').trim();
  if (rest !== '') throw new Error(`KQL: cannot read ${JSON.stringify(rest)} in ${JSON.stringify(query)}`);
  let i = 0;
  const fields: KqlField[] = [];
  const peek = () => tokens[i];
  const next = () => {
    const t = tokens[i++];
    if (t === undefined) throw new Error(`KQL: unexpected end of ${JSON.stringify(query)}`);
    return t;
  };
  const isWord = (t: string | undefined, w: string) => t?.toLowerCase() === w;
  const value = () => {
    const t = next();
    if (['(', ')', ':', '<', '>', '<=', '>='].includes(t))
      throw new Error(`KQL: expected a value, got ${t} in ${query}`);
  };
  const valueList = () => {
    if (peek() === '(') {
      next();
      value();
      while (isWord(peek(), 'or') || isWord(peek(), 'and')) {
        next();
        value();
      }
      if (next() !== ')') throw new Error(`KQL: unclosed value list in ${query}`);
    } else value();
  };
  const primary = (): void => {
    while (isWord(peek(), 'not')) next();
    if (peek() === '(') {
      next();
      or();
      if (next() !== ')') throw new Error(`KQL: unclosed parenthesis in ${query}`);
      return;
    }
    const field = next();
    if (!/^[A-Za-z_@][\w.@*-]*$/.test(field))
      throw new Error(`KQL: ${JSON.stringify(field)} is not a field in ${query}`);
    const op = next();
    if (op === ':') valueList();
    else if (op === '<' || op === '<=' || op === '>' || op === '>=') value();
    else throw new Error(`KQL: expected an operator after ${field}, got ${op} in ${query}`);
    fields.push({ field, op: op as KqlField['op'] });
  };
  const and = () => {
    primary();
    while (isWord(peek(), 'and')) {
      next();
      primary();
    }
  };
  const or = () => {
    and();
    while (isWord(peek(), 'or')) {
      next();
      and();
    }
  };
  if (tokens.length > 0) {
    or();
    if (i !== tokens.length) throw new Error(`KQL: unexpected ${tokens[i]} in ${query}`);
  }
  return fields;
}

// ---- the validator -----------------------------------------------------------------------------------------

/** A field a saved object uses, and what for. */
export interface FieldUse {
  field: string;
  /** A Lens operation, 'kql:' + operator, 'column' (a saved search column), 'sort', 'control', 'time', 'format'. */
  use: string;
  dataType?: string;
  where: string;
}

export interface Validation {
  problems: string[];
  fields: FieldUse[];
  objects: Json[];
}

export function validateNdjson(text: string, mapping: FieldTypes, fileName: string): Validation {
  const problems: string[] = [];
  const fields: FieldUse[] = [];
  const objects: Json[] = [];
  const problem = (where: string, what: string) => problems.push(`${fileName}: ${where}: ${what}`);
  if (!fileName.endsWith('.ndjson')) problem('file', 'Kibana imports only files named *.ndjson');

  text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .forEach((line, n) => {
      try {
        const o = JSON.parse(line);
        if (!isObject(o)) throw new Error('not an object');
        objects.push(o);
      } catch (error) {
        problem(`line ${n + 1}`, `does not parse: ${(error as Error).message}`);
      }
    });

  const byKey = new Map<string, Json>();
  for (const o of objects) {
    const where = `${String(o.type)} ${String(o.id)}`;
    if (!(String(o.type) in MAX_STAMPS)) problem(where, `type ${String(o.type)} is not one pgsight ships`);
    if (typeof o.id !== 'string' || !o.id.startsWith('pgsight-'))
      problem(where, 'id must start with pgsight-');
    if (o.id === 'logs-*') problem(where, "the id logs-* would overwrite Fleet's data view");
    const key = `${String(o.type)}/${String(o.id)}`;
    if (byKey.has(key)) problem(where, 'duplicate type and id');
    byKey.set(key, o);
    if (!semverAtMost(o.coreMigrationVersion, MAX_CORE))
      problem(
        where,
        `coreMigrationVersion ${String(o.coreMigrationVersion)} is missing or newer than ${MAX_CORE}`,
      );
    const max = MAX_STAMPS[String(o.type)];
    if (max && !semverAtMost(o.typeMigrationVersion, max))
      problem(
        where,
        `typeMigrationVersion ${String(o.typeMigrationVersion)} is missing or newer than ${max}`,
      );
    for (const key of FORBIDDEN_TOP)
      if (key in o) problem(where, `server-side key ${key} must not be shipped`);
    if (o.managed === true) problem(where, 'managed: true makes the object read-only');
    if (!isObject(o.attributes)) problem(where, 'attributes must be an object');
    if (!Array.isArray(o.references)) problem(where, 'references must be an array');
  }

  const parsed = (o: Json, path: string[], shape: 'array' | 'object'): unknown => {
    let v: unknown = o.attributes;
    for (const key of path) v = isObject(v) ? v[key] : undefined;
    const where = `${String(o.type)} ${String(o.id)}`;
    if (typeof v !== 'string') {
      problem(where, `attributes.${path.join('.')} must be a JSON string`);
      return undefined;
    }
    try {
      const value = JSON.parse(v);
      if (shape === 'array' ? !Array.isArray(value) : !isObject(value))
        problem(where, `attributes.${path.join('.')} must encode an ${shape}`);
      return value;
    } catch {
      problem(where, `attributes.${path.join('.')} does not parse`);
      return undefined;
    }
  };
  const refsOf = (o: Json) => (Array.isArray(o.references) ? (o.references as Json[]) : []);
  const refNamed = (o: Json, name: string) => refsOf(o).find((r) => r.name === name);
  const useKql = (query: unknown, where: string) => {
    if (!isObject(query)) return;
    if (query.language !== 'kuery')
      return problem(where, `query language ${String(query.language)} is not kuery`);
    try {
      for (const f of parseKql(String(query.query)))
        fields.push({ field: f.field, use: `kql:${f.op}`, where });
    } catch (error) {
      problem(where, (error as Error).message);
    }
  };

  const titles = new Set<string>();
  for (const o of objects) {
    const where = `${String(o.type)} ${String(o.id)}`;
    const attributes = isObject(o.attributes) ? o.attributes : {};
    // Every reference resolves inside the file (the data view travels with each dashboard).
    for (const r of refsOf(o))
      if (!byKey.has(`${String(r.type)}/${String(r.id)}`))
        problem(where, `reference ${String(r.name)} → ${String(r.type)} ${String(r.id)} is not in the file`);

    if (o.type === 'index-pattern') {
      fields.push({ field: String(attributes.timeFieldName), use: 'time', where });
      const formats = parsed(o, ['fieldFormatMap'], 'object');
      if (isObject(formats))
        for (const f of Object.keys(formats)) fields.push({ field: f, use: 'format', where });
    }

    if (o.type === 'search') {
      const source = parsed(o, ['kibanaSavedObjectMeta', 'searchSourceJSON'], 'object');
      if (isObject(source)) {
        useKql(source.query, where);
        if (typeof source.indexRefName !== 'string' || !refNamed(o, source.indexRefName))
          problem(where, 'searchSourceJSON.indexRefName names no reference');
      }
      for (const c of (attributes.columns as unknown[]) ?? [])
        fields.push({ field: String(c), use: 'column', where });
      for (const s of (attributes.sort as unknown[][]) ?? [])
        fields.push({ field: String(s[0]), use: 'sort', where });
    }

    if (o.type === 'lens') {
      const state = attributes.state;
      if (!isObject(state)) {
        problem(where, 'Lens state must be an object');
        continue;
      }
      useKql(state.query, where);
      const layers = (state.datasourceStates as { formBased?: { layers?: Json } } | undefined)?.formBased
        ?.layers;
      if (!isObject(layers) || Object.keys(layers).length === 0) problem(where, 'no formBased layer');
      const columnIds = new Set<string>();
      for (const [layerId, layer] of Object.entries(layers ?? {})) {
        const ref = refNamed(o, `indexpattern-datasource-layer-${layerId}`);
        if (!ref || ref.type !== 'index-pattern')
          problem(where, `layer ${layerId} has no data view reference`);
        const columns = (layer as { columns?: Json }).columns ?? {};
        const order = (layer as { columnOrder?: string[] }).columnOrder ?? [];
        if (order.length !== Object.keys(columns).length || order.some((id) => !(id in columns)))
          problem(where, `layer ${layerId}: columnOrder does not list exactly its columns`);
        for (const [id, column] of Object.entries(columns) as [string, Json][]) {
          columnIds.add(id);
          const cw = `${where} column ${id}`;
          if (column.filter) useKql(column.filter, cw);
          const params = isObject(column.params) ? column.params : {};
          if (column.operationType === 'filters')
            for (const f of (params.filters as Json[]) ?? []) useKql(f.input, cw);
          if (
            isObject(params.orderBy) &&
            params.orderBy.type === 'column' &&
            !(String(params.orderBy.columnId) in columns)
          )
            problem(cw, `orders by a column that is not in the layer: ${String(params.orderBy.columnId)}`);
          if (typeof column.sourceField === 'string' && column.sourceField !== '___records___')
            fields.push({
              field: column.sourceField,
              use: String(column.operationType),
              dataType: String(column.dataType),
              where: cw,
            });
        }
      }
      // Every accessor the visualization draws is a column of the layer.
      const accessors: unknown[] = [];
      const visualization = isObject(state.visualization) ? state.visualization : {};
      for (const layer of [visualization, ...((visualization.layers as Json[]) ?? [])]) {
        accessors.push(
          layer.xAccessor,
          layer.splitAccessor,
          layer.metricAccessor,
          ...((layer.accessors as unknown[]) ?? []),
        );
        for (const c of (layer.columns as Json[]) ?? []) accessors.push(c.columnId);
      }
      for (const a of accessors)
        if (a !== undefined && !columnIds.has(String(a)))
          problem(where, `visualization draws ${String(a)}, not a column`);
    }

    if (o.type === 'dashboard') {
      for (const key of Object.keys(attributes))
        if (!DASHBOARD_KEYS.has(key)) problem(where, `attribute ${key} is not in Kibana's dashboard schema`);
      const title = String(attributes.title ?? '');
      if (title === '') problem(where, 'title is empty');
      if (titles.has(title)) problem(where, `title ${title} is not unique`);
      titles.add(title);
      parsed(o, ['optionsJSON'], 'object');
      const source = parsed(o, ['kibanaSavedObjectMeta', 'searchSourceJSON'], 'object');
      if (isObject(source)) useKql(source.query, where);
      const panels = (parsed(o, ['panelsJSON'], 'array') as Json[] | undefined) ?? [];
      const indexes = new Set<string>();
      const cells = new Set<string>();
      for (const panel of panels) {
        const index = String(panel.panelIndex);
        const pw = `${where} panel ${index}`;
        if (typeof panel.type !== 'string') problem(pw, 'has no type');
        if (indexes.has(index)) problem(pw, 'panelIndex is not unique');
        indexes.add(index);
        const g = (panel.gridData ?? {}) as Record<string, unknown>;
        const [x, y, w, h] = [g.x, g.y, g.w, g.h] as number[];
        if (g.i !== index) problem(pw, 'gridData.i differs from panelIndex');
        if (![x, y, w, h].every((v) => Number.isInteger(v)) || (x as number) < 0 || (y as number) < 0)
          problem(pw, 'grid values must be non-negative integers');
        else if ((w as number) < 1 || (h as number) < 1 || (x as number) + (w as number) > GRID_COLUMNS)
          problem(pw, `does not fit the ${GRID_COLUMNS}-column grid`);
        else
          for (let cx = x as number; cx < (x as number) + (w as number); cx++)
            for (let cy = y as number; cy < (y as number) + (h as number); cy++) {
              if (cells.has(`${cx},${cy}`)) {
                problem(pw, `overlaps another panel at ${cx},${cy}`);
                cx = Number.POSITIVE_INFINITY;
                break;
              }
              cells.add(`${cx},${cy}`);
            }
        const byReference = typeof panel.panelRefName === 'string';
        if (byReference) {
          if (!isObject(panel.embeddableConfig) || Object.keys(panel.embeddableConfig).length > 0)
            problem(pw, 'a by-reference panel has an empty embeddableConfig');
          const ref = refNamed(o, `${index}:${String(panel.panelRefName)}`);
          if (!ref) problem(pw, `no reference named ${index}:${String(panel.panelRefName)}`);
          else if (ref.type !== panel.type)
            problem(pw, `reference type ${String(ref.type)} differs from panel type`);
        } else if (!isObject((panel.embeddableConfig as Json | undefined)?.attributes))
          problem(pw, 'neither by reference nor by value');
      }
      const group = attributes.controlGroupInput;
      if (isObject(group)) {
        const controls = parsed(o, ['controlGroupInput', 'panelsJSON'], 'object');
        parsed(o, ['controlGroupInput', 'ignoreParentSettingsJSON'], 'object');
        for (const [id, control] of Object.entries(isObject(controls) ? controls : {}) as [string, Json][]) {
          const input = (control.explicitInput ?? {}) as Json;
          if (control.type !== 'optionsListControl') problem(where, `control ${id}: unexpected type`);
          const ref = refNamed(o, `controlGroup_${id}:optionsListDataView`);
          if (!ref || ref.type !== 'index-pattern')
            problem(where, `control ${id} has no data view reference`);
          fields.push({ field: String(input.fieldName), use: 'control', where: `${where} control ${id}` });
        }
      }
    }
  }

  // Every field used exists in the explicit mapping, with a type that fits how it is used.
  for (const f of fields) {
    const type = mapping.get(f.field);
    if (!type) {
      problem(f.where, `field ${f.field} (${f.use}) is not in the explicit mapping`);
      continue;
    }
    const fits =
      NEEDS[f.use] ??
      (f.use === 'control' ? (t: string) => AGGREGATABLE.has(t) : undefined) ??
      (f.use === 'time' || f.use === 'sort'
        ? (t: string) => t === 'date' || AGGREGATABLE.has(t)
        : undefined) ??
      (f.use.startsWith('kql:') && f.use !== 'kql::'
        ? (t: string) => NUMERIC.has(t) || t === 'date'
        : undefined) ??
      (f.use === 'format' && f.field === 'event.duration' ? (t: string) => NUMERIC.has(t) : undefined);
    if (fits && !fits(type)) problem(f.where, `field ${f.field} is ${type}, which ${f.use} cannot use`);
    // A unique count is a number whatever it counts (Lens's cardinality operation, x-pack/plugins/lens
    // .../operations/definitions/cardinality.tsx: dataType 'number' on any aggregatable field).
    const counts = f.use === 'unique_count';
    if (!counts && f.dataType && DATA_TYPE[f.dataType] && !DATA_TYPE[f.dataType]?.(type))
      problem(f.where, `column dataType ${f.dataType} disagrees with ${f.field}: ${type}`);
  }
  return { problems, fields, objects };
}
