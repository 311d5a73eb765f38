/**
 * Builds the importable files from the sources in this folder:
 *
 *   dashboards/<dashboard>.ndjson      data view, the objects its panels show, the dashboard (one per line)
 *   dashboards/elasticsearch/*.json    ILM policy, component template, index template
 *   dashboards/manifest.json           what `pgsight setup` installs, in order, and the minimum versions
 *
 *   node dashboards/src/build.ts           write them
 *   node dashboards/src/build.ts --check   exit 1 when a committed file differs from what the sources build
 *
 * Each dashboard's description ends with a stamp, a hash of its file's objects: `pgsight setup` compares it
 * with the stamp of the dashboard already in Kibana, and imports only when they differ.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BUILTIN_COMPONENT_TEMPLATES,
  ELASTICSEARCH_ASSETS,
  MIN_ELASTICSEARCH,
  RETIRED_COMPONENT_TEMPLATES,
} from './elasticsearch.ts';
import { type DashboardFile, dataView, encode, MIN_KIBANA } from './kibana.ts';
import { postgresqlQueries } from './postgresql-queries.ts';
import { serviceOverview } from './service-overview.ts';
import { transactions } from './transactions.ts';

export const DASHBOARDS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

/** event.duration is in nanoseconds (ECS); shown as milliseconds, with the unit (`12.5 ms`, not `12.5`). */
const FIELD_FORMATS = {
  'event.duration': {
    id: 'duration',
    params: {
      inputFormat: 'nanoseconds',
      outputFormat: 'asMilliseconds',
      outputPrecision: 1,
      showSuffix: true,
      useShortSuffix: true,
    },
  },
};

export const DASHBOARDS: DashboardFile[] = [serviceOverview, postgresqlQueries, transactions];

export const STAMP = / \(pgsight build ([0-9a-f]{12})\)$/;

/** The objects of one dashboard's file, in import order: what is referenced comes before what refers to it. */
export function fileObjects(entry: DashboardFile): Record<string, unknown>[] {
  const objects = [dataView(FIELD_FORMATS), ...entry.panels.map((p) => p.object), entry.dashboard].map(
    encode,
  );
  const hash = createHash('sha256').update(JSON.stringify(objects)).digest('hex').slice(0, 12);
  const board = objects[objects.length - 1] as { attributes: { description: string } };
  board.attributes.description += ` (pgsight build ${hash})`;
  return objects;
}

/** Relative path under dashboards/ → file content. */
export function buildAssets(): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of DASHBOARDS)
    files.set(
      entry.file,
      `${fileObjects(entry)
        .map((o) => JSON.stringify(o))
        .join('\n')}\n`,
    );
  for (const asset of ELASTICSEARCH_ASSETS)
    files.set(join('elasticsearch', asset.file), `${JSON.stringify(asset.body, null, 2)}\n`);
  // What `pgsight setup` installs, in order, and the oldest versions it accepts.
  const manifest = {
    minElasticsearch: MIN_ELASTICSEARCH,
    minKibana: MIN_KIBANA,
    elasticsearch: ELASTICSEARCH_ASSETS.map(({ file, kind, name, path }) => ({
      file: `elasticsearch/${file}`,
      kind,
      name,
      path,
    })),
    // Component templates earlier versions installed: removed once nothing composes them.
    retiredComponentTemplates: RETIRED_COMPONENT_TEMPLATES,
    // Built-in component templates the index template composes, and their names before `renamedIn`.
    builtinComponentTemplates: BUILTIN_COMPONENT_TEMPLATES,
    dashboards: DASHBOARDS.map((d) => ({
      file: d.file,
      id: d.dashboard.id,
      title: d.dashboard.attributes.title,
    })),
  };
  files.set('manifest.json', `${JSON.stringify(manifest, null, 2)}\n`);
  return files;
}

/** The built files that differ from the committed ones. */
export function staleAssets(): string[] {
  const stale: string[] = [];
  for (const [path, content] of buildAssets()) {
    let committed = '';
    try {
      committed = readFileSync(join(DASHBOARDS_DIR, path), 'utf8');
    } catch {
      // missing: stale
    }
    if (committed !== content) stale.push(path);
  }
  return stale;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--check')) {
    const stale = staleAssets();
    if (stale.length > 0) {
      console.error(`dashboards: stale, run npm run dashboards: ${stale.join(', ')}`);
      process.exit(1);
    }
    console.log('dashboards: up to date');
  } else {
    for (const [path, content] of buildAssets()) {
      mkdirSync(dirname(join(DASHBOARDS_DIR, path)), { recursive: true });
      writeFileSync(join(DASHBOARDS_DIR, path), content);
      console.log(`dashboards: wrote ${path}`);
    }
  }
}
