// A local server that speaks the Kibana endpoints `pgsight setup` calls, as Kibana 8.x answers them:
// `GET /api/status`, `POST /api/saved_objects/_import` (multipart `file`, *.ndjson only, `overwrite`,
// per-object errors such as missing_references, the "more recent version" refusal) and
// `POST /api/saved_objects/_export` (NDJSON plus the export summary line; 400 for a missing object).
// POSTs need the kbn-xsrf header; with credentials set, every request needs them (401 otherwise).
// Spaces (`/s/<space>/api/...`) keep separate objects, and ids are unique across spaces as Kibana 8 makes
// them: an object imported into a space while its id is taken in another gets a new id there, with the
// original as its `originId`, and a later import with `overwrite` matches it by that `originId`
// (https://www.elastic.co/guide/en/kibana/current/sharing-saved-objects.html; the saved-objects import's
// regenerateIds / checkOriginConflicts). `GET /api/saved_objects/_find` lists objects with their originId.
// Every request is recorded.

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StoredObject {
  type: string;
  id: string;
  attributes: Record<string, unknown>;
  references: { type: string; id: string; name: string }[];
  updatedAt: string;
  /** The id it was imported with, when Kibana gave it a new one (the id was taken in another space). */
  originId?: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
}

const newer = (a: string, b: string) => {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0);
  return false;
};

export class FakeKibana {
  version = '8.15.0';
  /** `Authorization` header value every request must carry, when set. */
  authorization: string | undefined;
  /** Objects (by id) the import fails with an error of this type: a partial import. */
  readonly failIds = new Map<string, string>();
  readonly requests: RecordedRequest[] = [];
  /** space → `type/id` → object */
  readonly spaces = new Map<string, Map<string, StoredObject>>();
  private server: Server | undefined;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  objects(space = 'default'): Map<string, StoredObject> {
    const objects = this.spaces.get(space) ?? new Map<string, StoredObject>();
    this.spaces.set(space, objects);
    return objects;
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this.url;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private error(
    res: ServerResponse,
    status: number,
    error: string,
    message: string,
    extra: object = {},
  ): void {
    this.send(res, status, { statusCode: status, error, message, ...extra });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://kibana');
      this.requests.push({ method: req.method ?? '', path: url.pathname + url.search, headers: req.headers });
      if (this.authorization !== undefined && req.headers.authorization !== this.authorization)
        return this.error(res, 401, 'Unauthorized', '[security_exception]: unable to authenticate user');
      const spaced = /^\/s\/([^/]+)(\/.*)$/.exec(url.pathname);
      const space = spaced?.[1] ?? 'default';
      const path = spaced?.[2] ?? url.pathname;
      if (req.method === 'GET' && path === '/api/status')
        return this.send(res, 200, {
          name: 'kibana',
          version: { number: this.version, build_flavor: 'traditional' },
          status: { overall: { level: 'available' } },
        });
      if (req.method === 'POST' && req.headers['kbn-xsrf'] === undefined)
        return this.error(res, 400, 'Bad Request', 'Request must contain a kbn-xsrf header.');
      const body = Buffer.concat(chunks);
      if (req.method === 'POST' && path === '/api/saved_objects/_import')
        return void this.import(req, body, url, space, res);
      if (req.method === 'POST' && path === '/api/saved_objects/_export')
        return this.export(body, space, res);
      if (req.method === 'GET' && path === '/api/saved_objects/_find') return this.find(url, space, res);
      this.error(res, 404, 'Not Found', 'Not Found');
    });
  }

  private async import(req: IncomingMessage, body: Buffer, url: URL, space: string, res: ServerResponse) {
    let file: File;
    try {
      const form = await new Response(new Uint8Array(body), {
        headers: { 'content-type': String(req.headers['content-type']) },
      }).formData();
      file = form.get('file') as File;
      if (!(file instanceof File)) throw new Error('no file');
    } catch {
      return this.error(res, 400, 'Bad Request', '[request body.file]: expected value of type [Stream]');
    }
    if (!file.name.endsWith('.ndjson'))
      return this.error(
        res,
        400,
        'Bad Request',
        `Invalid file extension ${file.name.slice(file.name.lastIndexOf('.'))}`,
      );
    const overwrite = url.searchParams.get('overwrite') === 'true';
    const objects: StoredObject[] = [];
    for (const line of (await file.text()).split('\n')) {
      if (line.trim() === '') continue;
      const o = JSON.parse(line);
      if ('exportedCount' in o) continue; // the export summary line
      for (const stamp of [o.coreMigrationVersion, o.typeMigrationVersion])
        if (typeof stamp === 'string' && newer(stamp, this.version))
          return this.error(
            res,
            400,
            'Bad Request',
            `Document "${o.id}" belongs to a more recent version of Kibana [${stamp}] when the last known version is [${this.version}].`,
          );
      objects.push({
        type: o.type,
        id: o.id,
        attributes: o.attributes,
        references: o.references ?? [],
        updatedAt: '',
      });
    }
    const store = this.objects(space);
    // Where each incoming id lands in this space: the object there whose id or originId it is, else a new id
    // when another space already has it.
    const destination = new Map<string, string>();
    for (const o of objects) {
      const byOrigin = [...store.values()].find((x) => x.type === o.type && x.originId === o.id);
      const takenElsewhere = [...this.spaces]
        .filter(([name]) => name !== space)
        .some(([, other]) => other.has(`${o.type}/${o.id}`));
      if (byOrigin) destination.set(`${o.type}/${o.id}`, byOrigin.id);
      else if (!store.has(`${o.type}/${o.id}`) && takenElsewhere)
        destination.set(`${o.type}/${o.id}`, randomUUID());
    }
    for (const o of objects) {
      const to = destination.get(`${o.type}/${o.id}`);
      if (to) {
        o.originId = o.id;
        o.id = to;
      }
      o.references = o.references.map((r) => ({ ...r, id: destination.get(`${r.type}/${r.id}`) ?? r.id }));
    }
    const incoming = new Set(objects.map((o) => `${o.type}/${o.id}`));
    const errors: Record<string, unknown>[] = [];
    const successResults: Record<string, unknown>[] = [];
    for (const o of objects) {
      const key = `${o.type}/${o.id}`;
      const title = String(o.attributes.title ?? '');
      const missing = o.references.filter(
        (r) => !incoming.has(`${r.type}/${r.id}`) && !store.has(`${r.type}/${r.id}`),
      );
      const injected = this.failIds.get(o.id);
      if (injected)
        errors.push({ type: o.type, id: o.id, title, meta: { title }, error: { type: injected } });
      else if (missing.length > 0)
        errors.push({
          type: o.type,
          id: o.id,
          title,
          meta: { title },
          error: { type: 'missing_references', references: missing.map(({ type, id }) => ({ type, id })) },
        });
      else if (store.has(key) && !overwrite)
        errors.push({ type: o.type, id: o.id, title, meta: { title }, error: { type: 'conflict' } });
      else {
        store.set(key, { ...o, updatedAt: new Date().toISOString() });
        successResults.push({
          type: o.type,
          id: o.originId ?? o.id,
          ...(o.originId ? { destinationId: o.id } : {}),
          meta: { title },
          ...(overwrite ? { overwrite: true } : {}),
        });
      }
    }
    this.send(res, 200, {
      success: errors.length === 0,
      successCount: successResults.length,
      successResults,
      ...(errors.length > 0 ? { errors } : {}),
    });
  }

  private find(url: URL, space: string, res: ServerResponse) {
    const types = url.searchParams.getAll('type');
    const saved_objects = [...this.objects(space).values()]
      .filter((o) => types.length === 0 || types.includes(o.type))
      .map((o) => ({
        type: o.type,
        id: o.id,
        ...(o.originId ? { originId: o.originId } : {}),
        attributes: o.attributes,
        references: o.references,
        namespaces: [space],
      }));
    this.send(res, 200, {
      page: 1,
      per_page: saved_objects.length,
      total: saved_objects.length,
      saved_objects,
    });
  }

  private export(body: Buffer, space: string, res: ServerResponse) {
    const request = JSON.parse(body.toString('utf8') || '{}') as {
      objects?: { type: string; id: string }[];
      includeReferencesDeep?: boolean;
    };
    const store = this.objects(space);
    const missing = (request.objects ?? []).filter((o) => !store.has(`${o.type}/${o.id}`));
    if (missing.length > 0)
      return this.error(res, 400, 'Bad Request', 'Error fetching objects to export', {
        attributes: { objects: missing.map((o) => ({ ...o, error: { statusCode: 404 } })) },
      });
    const out = new Map<string, StoredObject>();
    const missingReferences: { type: string; id: string }[] = [];
    const visit = (type: string, id: string) => {
      const key = `${type}/${id}`;
      if (out.has(key)) return;
      const o = store.get(key);
      if (!o) return void missingReferences.push({ type, id });
      out.set(key, o);
      if (request.includeReferencesDeep) for (const r of o.references) visit(r.type, r.id);
    };
    for (const o of request.objects ?? []) visit(o.type, o.id);
    const lines = [...out.values()].map((o) =>
      JSON.stringify({
        type: o.type,
        id: o.id,
        ...(o.originId ? { originId: o.originId } : {}),
        attributes: o.attributes,
        references: o.references,
        updated_at: o.updatedAt,
      }),
    );
    lines.push(
      JSON.stringify({
        excludedObjects: [],
        excludedObjectsCount: 0,
        exportedCount: out.size,
        missingRefCount: missingReferences.length,
        missingReferences,
      }),
    );
    this.send(res, 200, `${lines.join('\n')}\n`, 'application/ndjson');
  }
}
