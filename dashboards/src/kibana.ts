/**
 * Builders for Kibana 8.x saved objects, written decoded (plain objects) and encoded at build time: the
 * attributes Kibana stores as JSON strings (`panelsJSON`, `optionsJSON`, `searchSourceJSON`, the control
 * group's `panelsJSON`, the data view's `fieldFormatMap`) are stringified by `encode` only.
 *
 * Version stamps are those of the oldest Kibana supported, MIN_KIBANA: Kibana runs every migration newer than
 * an object's stamp, so a stamp must describe the shape written here, and never be newer than the Kibana that
 * imports it (https://www.elastic.co/guide/en/kibana/current/saved-objects-api-import.html).
 */

export const MIN_KIBANA = '8.11.0';
export const CORE_MIGRATION_VERSION = '8.8.0';
/** Per type: the last migration of that type at or before MIN_KIBANA. */
export const TYPE_MIGRATION_VERSION = {
  'index-pattern': '8.0.0',
  search: '8.0.0',
  lens: '8.9.0',
  dashboard: '8.7.0',
} as const;

export type SavedObjectType = keyof typeof TYPE_MIGRATION_VERSION;

export interface Reference {
  type: string;
  id: string;
  name: string;
}

export interface SavedObject {
  type: SavedObjectType;
  id: string;
  attributes: Record<string, unknown>;
  references: Reference[];
}

export const DATA_VIEW_ID = 'pgsight-logs';
/** The data streams pgsight's index template matches (dashboards/elasticsearch/index-template.json). */
export const DATA_VIEW_PATTERN = 'logs-pgsight.*-*';

export interface Kql {
  query: string;
  language: 'kuery';
}
export const kql = (query: string): Kql => ({ query, language: 'kuery' });

// ---- the data view ----------------------------------------------------------------------------------------

export function dataView(fieldFormats: Record<string, unknown>): SavedObject {
  return {
    type: 'index-pattern',
    id: DATA_VIEW_ID,
    attributes: {
      title: DATA_VIEW_PATTERN,
      name: 'pgsight logs',
      timeFieldName: '@timestamp',
      // Dashboards open, empty, before the first document arrives.
      allowNoIndex: true,
      fieldFormatMap: fieldFormats,
    },
    references: [],
  };
}

// ---- Lens columns ------------------------------------------------------------------------------------------

export interface Column {
  label: string;
  customLabel?: boolean;
  dataType: 'number' | 'string' | 'date';
  operationType: string;
  sourceField?: string;
  isBucketed: boolean;
  scale: 'ratio' | 'ordinal' | 'interval';
  params?: Record<string, unknown>;
  filter?: Kql;
}

const labelled = (label: string) => ({ label, customLabel: true });

export const col = {
  time: (): Column => ({
    label: '@timestamp',
    dataType: 'date',
    operationType: 'date_histogram',
    sourceField: '@timestamp',
    isBucketed: true,
    scale: 'interval',
    params: { interval: 'auto', includeEmptyRows: true, dropPartials: false },
  }),
  count: (label: string, filter?: string): Column => ({
    ...labelled(label),
    dataType: 'number',
    operationType: 'count',
    sourceField: '___records___',
    isBucketed: false,
    scale: 'ratio',
    params: { emptyAsNull: true },
    ...(filter ? { filter: kql(filter) } : {}),
  }),
  /**
   * Records counted once each by `event.id`: a document replayed after its first answer was lost, across a
   * backing-index rollover, is stored twice (`_id` is unique per backing index only), and must not count twice.
   * Exact below Elasticsearch's cardinality precision threshold (3000 by default), which is where these
   * counts (errors, slow queries, retries) live.
   */
  distinct: (label: string): Column => ({
    ...labelled(label),
    dataType: 'number',
    operationType: 'unique_count',
    sourceField: 'event.id',
    isBucketed: false,
    scale: 'ratio',
    params: { emptyAsNull: true },
  }),
  metric: (operationType: 'sum' | 'max' | 'min' | 'avg', field: string, label: string): Column => ({
    ...labelled(label),
    dataType: 'number',
    operationType,
    sourceField: field,
    isBucketed: false,
    scale: 'ratio',
    params: { emptyAsNull: true },
  }),
  percentile: (field: string, percentile: number, label: string): Column => ({
    ...labelled(label),
    dataType: 'number',
    operationType: 'percentile',
    sourceField: field,
    isBucketed: false,
    scale: 'ratio',
    params: { percentile },
  }),
  terms: (
    field: string,
    label: string,
    orderBy: string,
    size = 10,
    dataType: 'string' | 'number' = 'string',
  ): Column => ({
    ...labelled(label),
    dataType,
    operationType: 'terms',
    sourceField: field,
    isBucketed: true,
    scale: 'ordinal',
    params: {
      size,
      orderBy:
        orderBy === 'alphabetical'
          ? { type: 'alphabetical', fallback: false }
          : { type: 'column', columnId: orderBy },
      orderDirection: orderBy === 'alphabetical' ? 'asc' : 'desc',
      otherBucket: false,
      missingBucket: false,
      parentFormat: { id: 'terms' },
    },
  }),
  filters: (label: string, filters: { label: string; query: string }[]): Column => ({
    ...labelled(label),
    dataType: 'string',
    operationType: 'filters',
    isBucketed: true,
    scale: 'ordinal',
    params: { filters: filters.map((f) => ({ label: f.label, input: kql(f.query) })) },
  }),
  histogram: (field: string, label: string): Column => ({
    ...labelled(label),
    dataType: 'number',
    operationType: 'range',
    sourceField: field,
    isBucketed: true,
    scale: 'interval',
    params: {
      type: 'histogram',
      maxBars: 'auto',
      includeEmptyRows: true,
      ranges: [{ from: 0, to: 1000, label: '' }],
    },
  }),
};

// ---- Lens visualizations -----------------------------------------------------------------------------------

export interface LensOptions {
  id: string;
  title: string;
  description: string;
  /** The panel's KQL query: what records it counts. */
  query: string;
  /** Column id → column, in the layer's column order. */
  columns: Record<string, Column>;
}

type XYSeries = 'line' | 'bar' | 'bar_stacked' | 'bar_percentage_stacked' | 'bar_horizontal' | 'area';

/** One layer per visualization: its id is derived from the object's id, so builds are reproducible. */
const layerIdOf = (id: string) => `layer-${id}`;

function lens(
  options: LensOptions,
  visualizationType: string,
  visualization: Record<string, unknown>,
): SavedObject {
  const layerId = layerIdOf(options.id);
  return {
    type: 'lens',
    id: options.id,
    attributes: {
      title: options.title,
      description: options.description,
      visualizationType,
      state: {
        query: kql(options.query),
        filters: [],
        datasourceStates: {
          formBased: {
            layers: {
              [layerId]: {
                columnOrder: Object.keys(options.columns),
                columns: options.columns,
                incompleteColumns: {},
              },
            },
          },
        },
        visualization,
        internalReferences: [],
        adHocDataViews: {},
      },
    },
    references: [
      { type: 'index-pattern', id: DATA_VIEW_ID, name: `indexpattern-datasource-layer-${layerId}` },
    ],
  };
}

export function xy(
  options: LensOptions & {
    series: XYSeries;
    x: string;
    y: string[];
    split?: string;
    /** Accessors drawn on the right axis. */
    right?: string[];
  },
): SavedObject {
  return lens(options, 'lnsXY', {
    legend: { isVisible: true, position: 'right' },
    valueLabels: 'hide',
    fittingFunction: 'None',
    axisTitlesVisibilitySettings: { x: true, yLeft: true, yRight: true },
    preferredSeriesType: options.series,
    layers: [
      {
        layerId: layerIdOf(options.id),
        layerType: 'data',
        seriesType: options.series,
        xAccessor: options.x,
        accessors: options.y,
        ...(options.split ? { splitAccessor: options.split } : {}),
        ...(options.right
          ? { yConfig: options.right.map((forAccessor) => ({ forAccessor, axisMode: 'right' })) }
          : {}),
        position: 'top',
        showGridlines: false,
      },
    ],
  });
}

export function metric(options: LensOptions & { value: string }): SavedObject {
  return lens(options, 'lnsMetric', {
    layerId: layerIdOf(options.id),
    layerType: 'data',
    metricAccessor: options.value,
  });
}

export function table(options: LensOptions): SavedObject {
  return lens(options, 'lnsDatatable', {
    layerId: layerIdOf(options.id),
    layerType: 'data',
    columns: Object.keys(options.columns).map((columnId) => ({ columnId })),
  });
}

// ---- saved searches ----------------------------------------------------------------------------------------

export function search(options: {
  id: string;
  title: string;
  description: string;
  query: string;
  columns: string[];
}): SavedObject {
  return {
    type: 'search',
    id: options.id,
    attributes: {
      title: options.title,
      description: options.description,
      columns: options.columns,
      sort: [['@timestamp', 'desc']],
      kibanaSavedObjectMeta: {
        searchSourceJSON: {
          query: kql(options.query),
          filter: [],
          indexRefName: 'kibanaSavedObjectMeta.searchSourceJSON.index',
        },
      },
    },
    references: [
      { type: 'index-pattern', id: DATA_VIEW_ID, name: 'kibanaSavedObjectMeta.searchSourceJSON.index' },
    ],
  };
}

// ---- dashboards --------------------------------------------------------------------------------------------

/** A panel: the object it shows by reference, and its place on the 48-column grid. */
export interface Panel {
  object: SavedObject;
  x: number;
  y: number;
  w: number;
  h: number;
}

/** An options-list control over the dashboard: a field whose values filter every panel. */
export interface Control {
  field: string;
  title: string;
}

/** The controls every pgsight dashboard carries. */
export const STANDARD_CONTROLS: Control[] = [
  { field: 'service.name', title: 'Service' },
  { field: 'service.environment', title: 'Environment' },
  { field: 'db.namespace', title: 'Database' },
];

export function dashboard(options: {
  id: string;
  title: string;
  description: string;
  panels: Panel[];
  controls: Control[];
}): SavedObject {
  const references: Reference[] = [];
  const panels = options.panels.map((panel, i) => {
    const panelIndex = `p${i + 1}`;
    references.push({
      type: panel.object.type,
      id: panel.object.id,
      name: `${panelIndex}:panel_${panelIndex}`,
    });
    return {
      type: panel.object.type,
      panelIndex,
      gridData: { x: panel.x, y: panel.y, w: panel.w, h: panel.h, i: panelIndex },
      embeddableConfig: {},
      panelRefName: `panel_${panelIndex}`,
      version: MIN_KIBANA,
    };
  });
  const controls: Record<string, unknown> = {};
  options.controls.forEach((control, order) => {
    const id = `control-${control.field.replace(/\./g, '-')}`;
    controls[id] = {
      order,
      width: 'medium',
      grow: true,
      type: 'optionsListControl',
      explicitInput: { id, fieldName: control.field, title: control.title },
    };
    references.push({
      type: 'index-pattern',
      id: DATA_VIEW_ID,
      name: `controlGroup_${id}:optionsListDataView`,
    });
  });
  return {
    type: 'dashboard',
    id: options.id,
    attributes: {
      title: options.title,
      description: options.description,
      panelsJSON: panels,
      optionsJSON: {
        useMargins: true,
        syncColors: false,
        syncCursor: true,
        syncTooltips: false,
        hidePanelTitles: false,
      },
      timeRestore: true,
      timeFrom: 'now-24h',
      timeTo: 'now',
      refreshInterval: { pause: false, value: 60_000 },
      controlGroupInput: {
        controlStyle: 'oneLine',
        chainingSystem: 'HIERARCHICAL',
        panelsJSON: controls,
        ignoreParentSettingsJSON: {
          ignoreFilters: false,
          ignoreQuery: false,
          ignoreTimerange: false,
          ignoreValidations: false,
        },
      },
      kibanaSavedObjectMeta: { searchSourceJSON: { query: kql(''), filter: [] } },
      version: 1,
    },
    references,
  };
}

/** One importable file: a dashboard with the standard controls, and the objects its panels show. */
export interface DashboardFile {
  file: string;
  dashboard: SavedObject;
  panels: Panel[];
}

export function dashboardFile(options: {
  file: string;
  id: string;
  title: string;
  description: string;
  panels: Panel[];
}): DashboardFile {
  const { file, panels, ...board } = options;
  return { file, panels, dashboard: dashboard({ ...board, panels, controls: STANDARD_CONTROLS }) };
}

// ---- encoding ----------------------------------------------------------------------------------------------

/** Attributes Kibana stores as JSON strings, by type (elastic-package encodes the same list). */
const STRINGIFIED: Record<SavedObjectType, string[][]> = {
  'index-pattern': [['fieldFormatMap']],
  search: [['kibanaSavedObjectMeta', 'searchSourceJSON']],
  lens: [],
  dashboard: [
    ['panelsJSON'],
    ['optionsJSON'],
    ['kibanaSavedObjectMeta', 'searchSourceJSON'],
    ['controlGroupInput', 'panelsJSON'],
    ['controlGroupInput', 'ignoreParentSettingsJSON'],
  ],
};

export const STRINGIFIED_PATHS = STRINGIFIED;

/** The importable form of one object: stringified attributes, version stamps. */
export function encode(object: SavedObject): Record<string, unknown> {
  const attributes = structuredClone(object.attributes);
  for (const path of STRINGIFIED[object.type]) {
    const parent = path
      .slice(0, -1)
      .reduce<Record<string, unknown>>((o, key) => o[key] as Record<string, unknown>, attributes);
    const key = path[path.length - 1] as string;
    if (parent[key] !== undefined) parent[key] = JSON.stringify(parent[key]);
  }
  return {
    type: object.type,
    id: object.id,
    coreMigrationVersion: CORE_MIGRATION_VERSION,
    typeMigrationVersion: TYPE_MIGRATION_VERSION[object.type],
    attributes,
    references: object.references,
  };
}
