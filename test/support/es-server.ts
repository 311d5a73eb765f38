// A local server that speaks the parts of Elasticsearch's HTTP API the transport and `pgsight setup` use,
// as the real one does: the product header on every response, the REST compatibility check on `Accept` /
// `Content-Type` (an 8.x cluster refuses `compatible-with=9`), `GET /`, and `POST /_bulk` with NDJSON
// action/document pairs, per-item statuses and errors, 409 for an existing `_id` with `create`, and
// request-level 429 / 5xx and outages on demand. Documents are kept per index, so tests can count them.
// For `pgsight setup`: ILM policies, component and index templates (PUT / GET, answered in Elasticsearch's
// shapes, with the defaults it fills in), the cluster's built-in `logs` templates by version and
// `_simulate_index` (./es-builtins.ts), authentication when `authorization` is set, and a request log.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  builtinComponentTemplates,
  builtinLogsTemplate,
  matchingTemplate,
  simulateIndex,
  unreferencedStreamsProblem,
} from './es-builtins.ts';
import { filtered } from './es-filter-path.ts';

/**
 * A stored document. Its JSON is kept as received and parsed again when `source` is first read: a benchmark
 * stores hundreds of thousands, and holding each as an object graph would make this server's garbage
 * collector, not the shipper under test, the bottleneck.
 */
export class StoredDoc {
  readonly index: string;
  readonly id: string;
  private readonly json: string;
  private parsed: Record<string, unknown> | undefined;

  constructor(index: string, id: string, json: string) {
    this.index = index;
    this.id = id;
    this.json = json;
  }

  get source(): Record<string, unknown> {
    this.parsed ??= JSON.parse(this.json) as Record<string, unknown>;
    return this.parsed;
  }
}

export type ItemFault = (
  doc: Record<string, unknown>,
  id: string,
) => { status: number; error: Record<string, unknown> } | undefined;

export class FakeElasticsearch {
  readonly docs = new Map<string, StoredDoc>();
  /** Every `_bulk` request's item count, in arrival order. */
  readonly bulkSizes: number[] = [];
  /** Creates seen for an id already stored (answered 409). */
  conflicts = 0;
  /** Answer every request with this status (429, 503...) while set. */
  requestStatus: number | undefined;
  /** Answer each `_bulk` this many ms late: a cluster that is slow but up. */
  bulkDelayMs = 0;
  /** Per-item failures, e.g. a mapping error for some documents. */
  itemFault: ItemFault | undefined;
  /** The version `GET /` reports; a client asking for a newer major's compatibility is refused, as ES does. */
  version = '8.15.0';
  /** `Authorization` header value every request must carry, when set (401 otherwise). */
  authorization: string | undefined;
  /**
   * What the caller's API key may do, when set. `shipper`: only the index privileges `create_doc` and
   * `auto_configure`, no cluster privilege, as a key for a log shipper should be: `GET /` and `HEAD /` need
   * the `monitor` cluster privilege and answer 403 (Elasticsearch's RestMainAction requires it), `_bulk` works.
   * `none`: `_bulk` is refused too (403, security_exception: "action [indices:data/write/bulk[s]] is
   * unauthorized"), as for a key with no privilege on the stream.
   * https://www.elastic.co/guide/en/elasticsearch/reference/current/security-privileges.html
   */
  keyPrivileges: 'shipper' | 'none' | undefined;
  /**
   * The failure store (Elasticsearch 9.1+, on by default for `logs-*` streams through `logs@settings` from 9.2):
   * a document that fails to be indexed (a mapping conflict) is answered `201` with `failure_store: "used"`,
   * kept in the stream's failure store and not in the stream.
   * https://www.elastic.co/docs/manage-data/data-store/data-streams/failure-store
   */
  failureStore = false;
  /**
   * Check documents as dynamic mapping and data stream rules would (on by default). A benchmark turns it off:
   * it measures the sender, and the checks would take CPU from it on the same machine.
   */
  checkDocuments = true;
  /**
   * The cluster setting `action.auto_create_index`: false restricts automatic creation, and a new data stream
   * is then created only when its matching index template has `allow_auto_create: true` (as the built-in
   * `logs@template` has). https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-index_.html#index-creation
   */
  autoCreateIndex = true;
  private readonly streams = new Set<string>();
  /** The next N `_bulk` requests are applied, then their connection is cut before the answer. */
  cutResponses = 0;
  /**
   * The next N `_bulk` requests are answered `200 {}` and stored nothing: what a proxy or gateway in front of
   * the cluster can answer for a request it never passed on.
   */
  emptyAnswers = 0;
  /** Documents the failure store took, with the reason. */
  readonly failureStored: { index: string; id: string; reason: string }[] = [];
  /** Field types per stream, as dynamic mapping set them from the first document that had the field. */
  private readonly mappings = new Map<string, Map<string, string>>();
  /** Backing index generation per stream: `_id` is unique per backing index only. */
  private readonly generations = new Map<string, number>();

  /** Roll a stream over to a new backing index (ILM's rollover, or `POST /<stream>/_rollover`). */
  rollover(stream: string): void {
    this.generations.set(stream, (this.generations.get(stream) ?? 1) + 1);
  }
  /** Every request, `METHOD /path`, in arrival order. */
  readonly requests: string[] = [];
  readonly ilmPolicies = new Map<string, { version: number; policy: Record<string, unknown> }>();
  readonly componentTemplates = new Map<string, Record<string, unknown>>();
  readonly indexTemplates = new Map<string, Record<string, unknown>>();
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(port = 0): Promise<string> {
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this.url;
  }

  /** An outage: the port stops answering (connections refused). `start(this.port)` brings it back. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }

  count(index?: string): number {
    let n = 0;
    for (const doc of this.docs.values()) if (!index || doc.index === index) n++;
    return n;
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'x-elastic-product': 'Elasticsearch',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const path = (req.url ?? '/').split('?')[0] as string;
      this.requests.push(`${req.method} ${path}`);
      if (this.authorization !== undefined && req.headers.authorization !== this.authorization) {
        res.setHeader('www-authenticate', 'Basic realm="security" charset="UTF-8", ApiKey');
        return this.send(res, 401, {
          error: {
            type: 'security_exception',
            reason: `unable to authenticate with provided credentials and anonymous access is not allowed for this request [${path}]`,
          },
          status: 401,
        });
      }
      if (this.requestStatus !== undefined) {
        return this.send(res, this.requestStatus, {
          error: {
            type: this.requestStatus === 429 ? 'es_rejected_execution_exception' : 'unavailable',
            reason: 'injected',
          },
          status: this.requestStatus,
        });
      }
      const major = Number(this.version.split('.')[0]);
      for (const header of [req.headers.accept, req.headers['content-type']]) {
        const wanted = /compatible-with=(\d+)/.exec(String(header ?? ''))?.[1];
        if (wanted && (Number(wanted) > major || Number(wanted) < major - 1)) {
          return this.send(res, 400, {
            error: {
              type: 'media_type_header_exception',
              reason: `Invalid media-type value on headers [Accept, Content-Type]`,
              root_cause: [
                {
                  type: 'status_exception',
                  reason: `Accept version must be either version ${major} or ${major - 1}, but found ${wanted}. Accept=${req.headers.accept}`,
                },
              ],
            },
            status: 400,
          });
        }
      }
      const refused = (action: string) =>
        this.send(res, 403, {
          error: {
            type: 'security_exception',
            reason: `action [${action}] is unauthorized for API key id [shipper] of user [shipper]`,
          },
          status: 403,
        });
      if (this.keyPrivileges && path === '/' && (req.method === 'GET' || req.method === 'HEAD'))
        return refused('cluster:monitor/main');
      if (this.keyPrivileges === 'none' && path?.endsWith('/_bulk'))
        return refused('indices:data/write/bulk[s]');
      if (req.method === 'GET' && path === '/') {
        return this.send(res, 200, {
          name: 'fake',
          cluster_name: 'fake',
          version: { number: this.version, build_flavor: 'default' },
          tagline: 'You Know, for Search',
        });
      }
      if (req.method === 'HEAD' && path === '/') return this.send(res, 200, {});
      if (
        (req.method === 'POST' || req.method === 'PUT') &&
        (path === '/_bulk' || path?.endsWith('/_bulk'))
      ) {
        const filter = new URL(req.url ?? '/', 'http://x').searchParams.get('filter_path');
        if (this.bulkDelayMs > 0) {
          setTimeout(() => this.bulk(body, res, filter), this.bulkDelayMs);
          return;
        }
        return this.bulk(body, res, filter);
      }
      const simulate = /^\/_index_template\/_simulate_index\/([^/]+)$/.exec(path);
      if (simulate && req.method === 'POST') {
        const index = decodeURIComponent(simulate[1] as string);
        const components = new Map([...this.builtinComponents(), ...this.componentTemplates]);
        const answer = simulateIndex(this.allIndexTemplates(), components, index);
        if (answer) return this.send(res, 200, answer);
        return this.send(res, 404, {
          error: {
            type: 'resource_not_found_exception',
            reason: `no matching index template found for index [${index}]`,
          },
          status: 404,
        });
      }
      const asset = /^\/(_ilm\/policy|_component_template|_index_template)\/([^/]+)$/.exec(path);
      if (asset && (req.method === 'GET' || req.method === 'PUT' || req.method === 'DELETE'))
        return this.asset(req.method, asset[1] as string, decodeURIComponent(asset[2] as string), body, res);
      this.send(res, 404, {
        error: { type: 'not_found', reason: `no handler for ${req.method} ${path}` },
        status: 404,
      });
    });
  }

  private asset(method: string, kind: string, name: string, body: string, res: ServerResponse) {
    const notFound = (reason: string) =>
      this.send(res, 404, { error: { type: 'resource_not_found_exception', reason }, status: 404 });
    if (kind === '_ilm/policy') {
      if (method === 'PUT') {
        const { policy } = JSON.parse(body) as {
          policy: { phases: Record<string, { actions: Record<string, unknown> }> };
        };
        // Elasticsearch fills in the delete action's default.
        const deletePhase = policy.phases.delete?.actions;
        if (deletePhase?.delete)
          deletePhase.delete = { delete_searchable_snapshot: true, ...(deletePhase.delete as object) };
        const version = (this.ilmPolicies.get(name)?.version ?? 0) + 1;
        this.ilmPolicies.set(name, { version, policy });
        return this.send(res, 200, { acknowledged: true });
      }
      const stored = this.ilmPolicies.get(name);
      if (!stored) return notFound(`Lifecycle policy not found: ${name}`);
      return this.send(res, 200, {
        [name]: {
          version: stored.version,
          modified_date: new Date().toISOString(),
          policy: stored.policy,
          in_use_by: {},
        },
      });
    }
    if (kind === '_component_template') {
      if (method === 'PUT') {
        // `@` names are Elasticsearch's own templates (logs@mappings, ecs@mappings, the @custom hooks its own
        // templates compose): the index templates docs ask users not to name theirs so. This stand-in refuses
        // them, so that pgsight can never depend on one.
        if (name.includes('@') && !name.endsWith('@custom'))
          return this.send(res, 400, {
            error: {
              type: 'illegal_argument_exception',
              reason: `component template [${name}]: '@' is reserved for Elasticsearch's built-in templates`,
            },
            status: 400,
          });
        this.componentTemplates.set(name, JSON.parse(body));
        return this.send(res, 200, { acknowledged: true });
      }
      if (method === 'DELETE') {
        if (!this.componentTemplates.has(name))
          return notFound(`component template matching [${name}] not found`);
        // Elasticsearch refuses to remove a component template an index template composes.
        const users = [...this.indexTemplates]
          .filter(([, t]) => ((t.composed_of as string[] | undefined) ?? []).includes(name))
          .map(([n]) => n);
        if (users.length > 0)
          return this.send(res, 400, {
            error: {
              type: 'illegal_argument_exception',
              reason: `component templates [${name}] cannot be removed as they are still in use by index templates [${users.join(', ')}]`,
            },
            status: 400,
          });
        this.componentTemplates.delete(name);
        return this.send(res, 200, { acknowledged: true });
      }
      const stored = this.componentTemplates.get(name) ?? this.builtinComponents().get(name);
      if (!stored) return notFound(`component template matching [${name}] not found`);
      return this.send(res, 200, { component_templates: [{ name, component_template: stored }] });
    }
    if (method === 'PUT') {
      const template = JSON.parse(body) as Record<string, any>;
      const ignored = new Set<string>(template.ignore_missing_component_templates ?? []);
      const builtins = this.builtinComponents();
      const missing = (template.composed_of ?? []).filter(
        (c: string) => !this.componentTemplates.has(c) && !builtins.has(c) && !ignored.has(c),
      );
      if (missing.length > 0)
        return this.send(res, 400, {
          error: {
            type: 'invalid_index_template_exception',
            reason: `index_template [${name}] invalid, cause [index template [${name}] specifies component templates [${missing.join(', ')}] that do not exist]`,
          },
          status: 400,
        });
      const unreferenced = unreferencedStreamsProblem(this.allIndexTemplates(), name, template, this.streams);
      if (unreferenced)
        return this.send(res, 400, {
          error: { type: 'illegal_argument_exception', reason: unreferenced },
          status: 400,
        });
      // Settings come back nested, and data_stream with its defaults.
      const settings = template.template?.settings ?? {};
      const nested: Record<string, any> = {};
      for (const [key, value] of Object.entries(settings)) {
        const parts = key.split('.');
        let at = nested;
        for (const part of parts.slice(0, -1)) at = at[part] ??= {};
        at[parts[parts.length - 1] as string] = value;
      }
      if (template.template) template.template.settings = nested;
      if (template.data_stream)
        template.data_stream = { hidden: false, allow_custom_routing: false, ...template.data_stream };
      this.indexTemplates.set(name, template);
      return this.send(res, 200, { acknowledged: true });
    }
    const stored = this.indexTemplates.get(name);
    if (!stored) return notFound(`index template matching [${name}] not found`);
    return this.send(res, 200, { index_templates: [{ name, index_template: stored }] });
  }

  /**
   * What dynamic mapping would refuse in `doc` (a document_parsing_exception), after mapping its new fields:
   * a concrete value where an object is mapped or the reverse, text where a number is mapped, and the
   * `data_stream.*` constant keywords of a `logs-<dataset>-<namespace>` stream with another value.
   * https://www.elastic.co/guide/en/elasticsearch/reference/current/dynamic-field-mapping.html,
   * https://www.elastic.co/guide/en/elasticsearch/reference/current/constant-keyword.html
   */
  private parsingProblem(index: string, doc: Record<string, unknown>): string | undefined {
    const stream = /^logs-([^-]+)-([^-]+)$/.exec(index);
    const ds = doc.data_stream as Record<string, unknown> | undefined;
    if (stream && ds && typeof ds === 'object') {
      const expected: Record<string, string> = {
        type: 'logs',
        dataset: stream[1] as string,
        namespace: stream[2] as string,
      };
      for (const [field, value] of Object.entries(expected))
        if (ds[field] !== undefined && ds[field] !== value)
          return `[constant_keyword] field [data_stream.${field}] only accepts values that are equal to the value defined in the mappings [${value}], but got [${String(ds[field])}]`;
    }
    const mapping = this.mappings.get(index) ?? new Map<string, FieldType>();
    const seen: [string, FieldType][] = [];
    const walk = (value: Record<string, unknown>, prefix: string): string | undefined => {
      for (const [key, v] of Object.entries(value)) {
        const path = prefix ? `${prefix}.${key}` : key;
        const type = typeOf(v);
        if (!type) continue;
        const mapped = mapping.get(path);
        if (mapped === 'object' && type !== 'object')
          return `object mapping for [${path}] tried to parse field [${path}] as object, but found a concrete value`;
        if (mapped && mapped !== 'object' && type === 'object')
          return `failed to parse field [${path}] of type [${mapped}]: Can't get text on a START_OBJECT`;
        if ((mapped === 'long' || mapped === 'double') && type === 'keyword' && !Number.isFinite(Number(v)))
          return `failed to parse field [${path}] of type [${mapped}]: For input string: "${String(v)}"`;
        if (!mapped) seen.push([path, type]);
        if (type === 'object' && !Array.isArray(v)) {
          const inner = walk(v as Record<string, unknown>, path);
          if (inner) return inner;
        }
      }
      return undefined;
    };
    const problem = walk(doc, '');
    if (problem) return problem;
    for (const [path, type] of seen) mapping.set(path, type);
    this.mappings.set(index, mapping);
    return undefined;
  }

  /** The highest-priority index template whose pattern matches `index` allows automatic creation. */
  private templateAllowsAutoCreate(index: string): boolean {
    return matchingTemplate(this.allIndexTemplates(), index)?.[1].allow_auto_create === true;
  }

  /** The cluster's own component templates for logs streams, by its version. */
  private builtinComponents(): Map<string, Record<string, unknown>> {
    return builtinComponentTemplates(this.version);
  }

  /** Index templates: the built-in `logs` one, then the users' (one named `logs` replaces it). */
  private allIndexTemplates(): Map<string, Record<string, unknown>> {
    return new Map([['logs', builtinLogsTemplate(this.version)], ...this.indexTemplates]);
  }

  private bulk(body: string, res: ServerResponse, filterPath: string | null): void {
    if (this.emptyAnswers > 0) {
      this.emptyAnswers--;
      this.send(res, 200, {});
      return;
    }
    const lines = body.split('\n').filter((l) => l.length > 0);
    const items: Record<string, unknown>[] = [];
    let errors = false;
    for (let i = 0; i < lines.length; i += 2) {
      let action: Record<string, { _index?: string; _id?: string }>;
      let doc: Record<string, unknown>;
      try {
        action = JSON.parse(lines[i] as string);
        doc = JSON.parse(lines[i + 1] as string);
      } catch {
        this.send(res, 400, {
          error: { type: 'x_content_parse_exception', reason: 'malformed bulk body' },
          status: 400,
        });
        return;
      }
      const [op, meta] = Object.entries(action)[0] as [string, { _index?: string; _id?: string }];
      const index = meta._index ?? 'unknown';
      const id = meta._id ?? `auto-${this.docs.size}-${i}`;
      const key = `${index}/${this.generations.get(index) ?? 1}/${id}`;
      let status = 201;
      let error: Record<string, unknown> | undefined;
      let failureStore: string | undefined;
      const badName = this.checkDocuments ? indexNameProblem(index) : undefined;
      const parsing = badName || !this.checkDocuments ? undefined : this.parsingProblem(index, doc);
      if (badName) {
        status = 400;
        error = { type: 'invalid_index_name_exception', reason: `Invalid index name [${index}], ${badName}` };
      } else if (!this.autoCreateIndex && !this.streams.has(index) && !this.templateAllowsAutoCreate(index)) {
        status = 404;
        error = {
          type: 'index_not_found_exception',
          reason: `no such index [${index}] and [action.auto_create_index] ([false]) doesn't match`,
        };
      } else if (parsing && this.failureStore && index.startsWith('logs-')) {
        failureStore = 'used';
        this.failureStored.push({ index, id, reason: parsing });
      } else if (parsing) {
        status = 400;
        error = { type: 'document_parsing_exception', reason: parsing };
      } else if (op !== 'create' && index.startsWith('logs-')) {
        status = 400;
        error = {
          type: 'illegal_argument_exception',
          reason: `only write ops with an op_type of create are allowed in data streams`,
        };
      } else if (typeof doc['@timestamp'] !== 'string') {
        status = 400;
        error = {
          type: 'illegal_argument_exception',
          reason: 'data stream timestamp field [@timestamp] is missing',
        };
      } else if (failureStore) {
        // Stored in the failure store: answered as created, not in the stream.
      } else {
        const fault = this.itemFault?.(doc, id);
        if (fault) ({ status, error } = fault);
        else if (this.docs.has(key)) {
          status = 409;
          this.conflicts++;
          error = {
            type: 'version_conflict_engine_exception',
            reason: `[${id}]: version conflict, document already exists`,
          };
        } else {
          this.docs.set(key, new StoredDoc(index, id, lines[i + 1] as string));
          this.streams.add(index);
        }
      }
      if (status >= 300) errors = true;
      const item = {
        _index: index,
        _id: id,
        status,
        result: status === 201 ? 'created' : undefined,
        ...(error ? { error } : {}),
        ...(failureStore ? { failure_store: failureStore } : {}),
      };
      items.push({ [op]: item });
    }
    this.bulkSizes.push(items.length);
    if (this.cutResponses > 0) {
      // Stored, but the connection drops before the answer: the sender cannot know what happened.
      this.cutResponses--;
      res.socket?.destroy();
      return;
    }
    const response = { took: 1, errors, items };
    this.send(res, 200, filterPath ? (filtered(response, filterPath) ?? {}) : response);
  }
}

/**
 * Index and data stream names Elasticsearch refuses (MetadataCreateIndexService.validateIndexOrAliasName):
 * upper case, \\ / * ? " < > | , # or a space, a leading - _ +, more than 255 bytes.
 */
function indexNameProblem(name: string): string | undefined {
  if (name !== name.toLowerCase()) return 'must be lowercase';
  if (/[\\/*?"<>|,# ]/.test(name))
    return 'must not contain the following characters [\\, /, *, ?, ", <, >, |, ,, #, space]';
  if (/^[-_+]/.test(name)) return "must not start with '_', '-', or '+'";
  if (Buffer.byteLength(name) > 255) return 'index name is too long';
  return undefined;
}

type FieldType = 'object' | 'long' | 'double' | 'keyword' | 'boolean';

function typeOf(value: unknown): FieldType | undefined {
  if (value === null || value === undefined) return undefined;
  if (Array.isArray(value)) return typeOf(value.find((v) => v !== null && v !== undefined));
  if (typeof value === 'object') return 'object';
  if (typeof value === 'number') return Number.isInteger(value) ? 'long' : 'double';
  if (typeof value === 'boolean') return 'boolean';
  return 'keyword';
}
