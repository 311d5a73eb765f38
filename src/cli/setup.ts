/**
 * `pgsight setup`: installs the Elasticsearch assets (ILM policy, component template, index template) and
 * imports the Kibana dashboards, as dashboards/manifest.json lists them.
 *
 *   Elasticsearch: GET / (version) → per asset: GET; PUT only when what is installed differs
 *   Kibana:        GET /api/status (version) → per dashboard file: POST _export of the dashboard and its
 *                  references; POST _import?overwrite=true only when an object is missing or the dashboard's
 *                  build stamp differs
 *
 * So a second run changes nothing. Elasticsearch fills in defaults (`delete_searchable_snapshot`,
 * `data_stream.hidden`...), so "the same" means: every key pgsight sets has pgsight's value.
 * Elasticsearch goes through the official client (auth, product check, REST compatibility headers); Kibana
 * has no official Node client, so its two endpoints are called with fetch.
 */
import { readFile } from 'node:fs/promises';
import { Client, errors as esErrors } from '@elastic/elasticsearch';
import { PgsightError } from '../errors.js';

export interface SetupOptions {
  elasticsearch?: string;
  kibana?: string;
  /** Kibana space to import into. @default the default space */
  space?: string;
  apiKey?: string;
  user?: string;
  password?: string;
  /** Kibana's own credentials. @default the Elasticsearch ones (apiKey, user, password) */
  kibanaApiKey?: string;
  kibanaUser?: string;
  kibanaPassword?: string;
  dryRun?: boolean;
  /** Where manifest.json and the built files are. @default the package's dashboards/ */
  dashboardsDir?: URL;
}

interface Manifest {
  minElasticsearch: string;
  minKibana: string;
  elasticsearch: {
    file: string;
    kind: 'ilm_policy' | 'component_template' | 'index_template';
    name: string;
    path: string;
  }[];
  dashboards: { file: string; id: string; title: string }[];
  /** Component templates earlier versions installed, removed by setup. */
  retiredComponentTemplates?: string[];
  /** Built-in component templates the index template composes, and their names before `renamedIn`. */
  builtinComponentTemplates?: { renamedIn: string; formerNames: Record<string, string> };
}

type Json = Record<string, unknown>;
type Print = (line: string) => void;

const DASHBOARDS_DIR = new URL('../../../dashboards/', import.meta.url);
const STAMP = / \(pgsight build ([0-9a-f]{12})\)$/;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** True when every key of `desired` is in `actual` with the same value (servers add their defaults). */
export function contains(actual: unknown, desired: unknown): boolean {
  if (Array.isArray(desired))
    return (
      Array.isArray(actual) &&
      actual.length === desired.length &&
      desired.every((d, i) => contains(actual[i], d))
    );
  if (isObject(desired))
    return isObject(actual) && Object.entries(desired).every(([k, v]) => contains(actual[k], v));
  return actual === desired;
}

function versionAtLeast(version: string, min: string): boolean {
  const a = version.split(/[.-]/).map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

function tooOld(product: string, url: string, version: string, min: string): PgsightError {
  return new PgsightError(
    'PGSIGHT_ERR_SETUP_VERSION',
    `${product} at ${url} is version ${version}; pgsight's dashboards need ${min} or newer`,
  );
}

function unauthorized(product: string, url: string, status: number, reason: string): PgsightError {
  return new PgsightError(
    'PGSIGHT_ERR_SETUP_UNAUTHORIZED',
    `${product} at ${url} refused the credentials (${status}${reason ? `: ${reason}` : ''}); check --api-key or --user / --password`,
  );
}

function unreachable(product: string, url: string, cause: unknown): PgsightError {
  const detail =
    (cause as { cause?: { code?: string } })?.cause?.code ?? (cause as Error)?.message ?? String(cause);
  return new PgsightError('PGSIGHT_ERR_SETUP_UNREACHABLE', `cannot reach ${product} at ${url} (${detail})`, {
    cause,
  });
}

// ---- Elasticsearch -----------------------------------------------------------------------------------------

/**
 * The index template as a cluster of `version` needs it: before the built-in templates' rename, their former
 * names (composing a name the cluster lacks would silently lose the logs mappings and settings).
 */
function forVersion(desired: Json, version: string, builtins: Manifest['builtinComponentTemplates']): Json {
  if (!builtins || versionAtLeast(version, builtins.renamedIn)) return desired;
  const rename = (names: unknown) =>
    Array.isArray(names) ? names.map((n: string) => builtins.formerNames[n] ?? n) : names;
  return {
    ...desired,
    composed_of: rename(desired.composed_of),
    ignore_missing_component_templates: rename(desired.ignore_missing_component_templates),
  };
}

/** The installed asset in the shape it was PUT, from the GET answer of its kind. */
function installed(kind: Manifest['elasticsearch'][number]['kind'], name: string, body: Json): unknown {
  if (kind === 'ilm_policy') return { policy: (body[name] as Json | undefined)?.policy };
  if (kind === 'component_template')
    return (body.component_templates as { component_template: unknown }[] | undefined)?.[0]
      ?.component_template;
  return (body.index_templates as { index_template: unknown }[] | undefined)?.[0]?.index_template;
}

const KIND_LABEL = {
  ilm_policy: 'ILM policy',
  component_template: 'component template',
  index_template: 'index template',
};

async function setupElasticsearch(
  options: SetupOptions,
  manifest: Manifest,
  dir: URL,
  print: Print,
): Promise<void> {
  const url = options.elasticsearch as string;
  const client = new Client({
    node: url,
    ...(options.apiKey
      ? { auth: { apiKey: options.apiKey } }
      : options.user
        ? { auth: { username: options.user, password: options.password ?? '' } }
        : {}),
    maxRetries: 2,
    requestTimeout: 30_000,
  });
  const call = async (
    method: 'GET' | 'PUT' | 'DELETE',
    path: string,
    body?: Json,
  ): Promise<Json | undefined> => {
    try {
      return (await client.transport.request({ method, path, ...(body ? { body } : {}) })) as Json;
    } catch (error) {
      if (error instanceof esErrors.ConnectionError || error instanceof esErrors.TimeoutError)
        throw unreachable('Elasticsearch', url, error);
      if (error instanceof esErrors.ResponseError) {
        const status = error.statusCode ?? 0;
        const reason = (error.body as { error?: { reason?: string } })?.error?.reason ?? '';
        if (status === 401 || status === 403) throw unauthorized('Elasticsearch', url, status, reason);
        if (status === 404 && (method === 'GET' || method === 'DELETE')) return undefined;
        throw new PgsightError(
          'PGSIGHT_ERR_SETUP_REQUEST',
          `Elasticsearch at ${url} answered ${method} ${path} with ${status}: ${reason || JSON.stringify(error.body)}`,
          { cause: error },
        );
      }
      if (error instanceof esErrors.ProductNotSupportedError)
        throw new PgsightError('PGSIGHT_ERR_SETUP_REQUEST', `${url} does not answer as Elasticsearch`, {
          cause: error,
        });
      throw unreachable('Elasticsearch', url, error);
    }
  };
  try {
    const info = (await call('GET', '/')) as { version?: { number?: string } };
    const version = info?.version?.number ?? '0.0.0';
    if (!versionAtLeast(version, manifest.minElasticsearch))
      throw tooOld('Elasticsearch', url, version, manifest.minElasticsearch);
    print(`Elasticsearch ${url}: version ${version}`);
    for (const asset of manifest.elasticsearch) {
      const shipped = JSON.parse(await readFile(new URL(asset.file, dir), 'utf8')) as Json;
      const desired =
        asset.kind === 'index_template'
          ? forVersion(shipped, version, manifest.builtinComponentTemplates)
          : shipped;
      const current = await call('GET', asset.path);
      let label = `${KIND_LABEL[asset.kind]} ${asset.name}`;
      if (desired !== shipped)
        label += ` (composing ${(desired.composed_of as string[]).join(', ')}: the names ${version} gives its built-in logs templates)`;
      if (current && contains(installed(asset.kind, asset.name, current), desired)) {
        print(`${label}: unchanged`);
        continue;
      }
      const verb = current ? 'updated' : 'created';
      if (options.dryRun) print(`${label}: would be ${verb} (dry run)`);
      else {
        await call('PUT', asset.path, desired);
        print(`${label}: ${verb}`);
      }
    }
    // Migration: templates an earlier version installed under a name pgsight no longer uses. The index
    // template above no longer composes them, so Elasticsearch lets them go.
    for (const name of manifest.retiredComponentTemplates ?? []) {
      const path = `/_component_template/${encodeURIComponent(name)}`;
      if (!(await call('GET', path))) continue;
      if (options.dryRun)
        print(`component template ${name}: would be removed, replaced by another name (dry run)`);
      else {
        await call('DELETE', path);
        print(`component template ${name}: removed (replaced by another name)`);
      }
    }
  } finally {
    await client.close();
  }
}

// ---- Kibana ------------------------------------------------------------------------------------------------

async function setupKibana(options: SetupOptions, manifest: Manifest, dir: URL, print: Print): Promise<void> {
  const url = (options.kibana as string).replace(/\/+$/, '');
  const base = `${url}${options.space ? `/s/${encodeURIComponent(options.space)}` : ''}`;
  const headers: Record<string, string> = { 'kbn-xsrf': 'pgsight' };
  const own = options.kibanaApiKey !== undefined || options.kibanaUser !== undefined;
  const apiKey = own ? options.kibanaApiKey : options.apiKey;
  const user = own ? options.kibanaUser : options.user;
  const password = own ? options.kibanaPassword : options.password;
  if (apiKey) headers.authorization = `ApiKey ${apiKey}`;
  else if (user)
    headers.authorization = `Basic ${Buffer.from(`${user}:${password ?? ''}`).toString('base64')}`;

  const request = async (
    method: string,
    path: string,
    body?: string | FormData,
    json = false,
  ): Promise<Response> => {
    let response: Response;
    try {
      response = await fetch(`${path.startsWith('/api/status') ? url : base}${path}`, {
        method,
        headers: json ? { ...headers, 'content-type': 'application/json' } : headers,
        ...(body ? { body } : {}),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (error) {
      throw unreachable('Kibana', url, error);
    }
    if (response.status === 401 || response.status === 403) {
      const text = await response.text();
      throw unauthorized(
        'Kibana',
        url,
        response.status,
        (JSON.parse(text || '{}') as { message?: string }).message ?? '',
      );
    }
    return response;
  };
  const failed = async (what: string, response: Response) =>
    new PgsightError(
      'PGSIGHT_ERR_SETUP_REQUEST',
      `Kibana at ${url} answered ${what} with ${response.status}: ${(await response.text()).slice(0, 500)}`,
    );

  const status = await request('GET', '/api/status');
  if (!status.ok) throw await failed('GET /api/status', status);
  const version = ((await status.json()) as { version?: { number?: string } }).version?.number ?? '0.0.0';
  if (!versionAtLeast(version, manifest.minKibana)) throw tooOld('Kibana', url, version, manifest.minKibana);
  print(`Kibana ${url}${options.space ? ` (space ${options.space})` : ''}: version ${version}`);

  for (const board of manifest.dashboards) {
    const text = await readFile(new URL(board.file, dir), 'utf8');
    const objects = text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as { type: string; id: string; attributes: Json });
    const label = `dashboard ${board.title} (${board.file}, ${objects.length} objects)`;
    if (await upToDate(board.id, objects)) {
      print(`${label}: unchanged`);
      continue;
    }
    if (options.dryRun) {
      print(`${label}: would be imported (dry run)`);
      continue;
    }
    const form = new FormData();
    form.append('file', new Blob([text], { type: 'application/ndjson' }), board.file);
    const response = await request('POST', '/api/saved_objects/_import?overwrite=true', form);
    if (!response.ok) throw await failed(`the import of ${board.file}`, response);
    const result = (await response.json()) as {
      success?: boolean;
      successCount?: number;
      errors?: { type: string; id: string; error?: { type?: string; message?: string } }[];
    };
    if (!result.success || (result.successCount ?? 0) !== objects.length) {
      const errors = result.errors ?? [];
      throw new PgsightError(
        'PGSIGHT_ERR_SETUP_IMPORT',
        `Kibana imported ${result.successCount ?? 0} of ${objects.length} objects of ${board.file}; failed: ${errors
          .map(
            (e) =>
              `${e.type} ${e.id} (${e.error?.type ?? 'error'}${e.error?.message ? `: ${e.error.message}` : ''})`,
          )
          .join(', ')}`,
        { details: errors },
      );
    }
    print(`${label}: imported`);
  }

  /** Installed: every object of the file exists, and the dashboard carries this build's stamp. */
  /**
   * Whether the dashboard and every object it needs are installed as shipped. In a space other than the
   * default one, Kibana may have given them new ids on import (ids are unique across spaces since 8.0): each
   * is found by its id or by its `originId`, the id it was imported with.
   */
  async function upToDate(
    id: string,
    objects: { type: string; id: string; attributes: Json }[],
  ): Promise<boolean> {
    const wanted = objects.find((o) => o.type === 'dashboard');
    const stamp = STAMP.exec(String(wanted?.attributes.description ?? ''))?.[1];
    const types = [...new Set(objects.map((o) => o.type))];
    const query = types.map((t) => `type=${encodeURIComponent(t)}`).join('&');
    const found = await request('GET', `/api/saved_objects/_find?${query}&per_page=10000`);
    if (!found.ok) return false;
    const installed =
      (
        (await found.json()) as {
          saved_objects?: { type: string; id: string; originId?: string; attributes?: Json }[];
        }
      ).saved_objects ?? [];
    const byShippedId = new Map<string, { attributes?: Json }>();
    for (const o of installed) {
      byShippedId.set(`${o.type}/${o.id}`, o);
      if (o.originId) byShippedId.set(`${o.type}/${o.originId}`, o);
    }
    const board = byShippedId.get(`dashboard/${id}`);
    return (
      stamp !== undefined &&
      STAMP.exec(String(board?.attributes?.description ?? ''))?.[1] === stamp &&
      objects.every((o) => byShippedId.has(`${o.type}/${o.id}`))
    );
  }
}

// ---- the command -------------------------------------------------------------------------------------------

export async function setup(options: SetupOptions, print: Print): Promise<void> {
  const dir = options.dashboardsDir ?? DASHBOARDS_DIR;
  const manifest = JSON.parse(await readFile(new URL('manifest.json', dir), 'utf8')) as Manifest;
  if (options.elasticsearch) await setupElasticsearch(options, manifest, dir, print);
  if (options.kibana) await setupKibana(options, manifest, dir, print);
}
