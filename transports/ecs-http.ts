/**
 * ECS `http.*`, `url.*`, `client.*` and `user_agent.*` from pino-http's `req` and `res`
 * (https://www.elastic.co/guide/en/ecs/current/ecs-http.html). Only an allow-list of headers is kept.
 */
type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Headers worth keeping; everything else (cookies, authorization, custom tokens) is dropped. */
const HEADER_ALLOW = new Set([
  'accept',
  'accept-encoding',
  'accept-language',
  'cache-control',
  'content-encoding',
  'content-length',
  'content-type',
  'host',
  'origin',
  'referer',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-request-id',
  'traceparent',
  'location',
  'etag',
  'retry-after',
]);

function allowHeaders(headers: unknown): Json | undefined {
  if (!isObject(headers)) return undefined;
  const kept: Json = {};
  let any = false;
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (HEADER_ALLOW.has(lower)) {
      kept[lower] = value;
      any = true;
    }
  }
  return any ? kept : undefined;
}

/** `doc.http`, created when missing. */
function httpOf(doc: Json): Json {
  if (!isObject(doc.http)) doc.http = {};
  return doc.http as Json;
}

/** A request's or response's `body.bytes` (from content-length) and allowed headers; returns its headers. */
function messageFields(message: Json, target: Json): Json {
  const headers = isObject(message.headers) ? message.headers : {};
  const length = headers['content-length'];
  if (length !== undefined && Number.isFinite(Number(length))) target.body = { bytes: Number(length) };
  const kept = allowHeaders(headers);
  if (kept) target.headers = kept;
  return headers;
}

export function requestFields(req: Json, doc: Json): void {
  const http = httpOf(doc);
  const request: Json = {};
  if (req.id !== undefined) request.id = String(req.id);
  if (typeof req.method === 'string') request.method = req.method;
  const headers = messageFields(req, request);
  http.request = request;
  if (typeof req.url === 'string') {
    const q = req.url.indexOf('?');
    doc.url = {
      original: req.url,
      path: q === -1 ? req.url : req.url.slice(0, q),
      ...(q === -1 ? {} : { query: req.url.slice(q + 1) }),
    };
  }
  if (typeof req.remoteAddress === 'string') {
    doc.client = {
      ip: req.remoteAddress.replace(/^::ffff:/, ''),
      address: req.remoteAddress,
      ...(typeof req.remotePort === 'number' ? { port: req.remotePort } : {}),
    };
  }
  const agent = headers['user-agent'];
  if (typeof agent === 'string') doc.user_agent = { original: agent };
}

export function responseFields(res: Json, doc: Json): void {
  const http = httpOf(doc);
  const response: Json = {};
  if (typeof res.statusCode === 'number') response.status_code = res.statusCode;
  messageFields(res, response);
  http.response = response;
}
