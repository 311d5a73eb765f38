/**
 * Request logging, built on pino-http (node:http) and on fastify's own request logging:
 * - a request id: a valid incoming `x-request-id` is kept, otherwise one is generated; echoed in the response;
 * - that id and the trace id are bound to the log context for the whole request, so every record of the
 *   request (pgsight's slow-query records included) carries them;
 * - one record when the request completes (method, route, status, duration, client ip, user agent, response
 *   size: pino-http's `req`/`res`/`responseTime`, mapped to ECS by pgsight/transport), at error level when it
 *   failed (5xx or a thrown error);
 * - health-check paths can be excluded.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import { currentLogScope, withLogContext } from '../ecs/log-context.js';
import { closeTally, requestLabels, withQueryTally } from '../ecs/query-tally.js';

export interface RequestLoggingOptions {
  logger: Logger;
  /** Paths (exact, query string ignored) or patterns that get no completion record. @default ['/healthz', '/readyz', '/livez'] */
  exclude?: (string | RegExp)[];
  /** The request id header, read and echoed. @default 'x-request-id' */
  header?: string;
  /** The route template of a request (`/accounts/:id`), for `http.route`. */
  route?: (req: IncomingMessage) => string | undefined;
}

const VALID_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

function requestId(req: IncomingMessage, header: string): string {
  const incoming = req.headers[header];
  const value = Array.isArray(incoming) ? incoming[0] : incoming;
  return value !== undefined && VALID_ID.test(value) ? value : randomUUID();
}

function excluded(url: string | undefined, exclude: (string | RegExp)[]): boolean {
  const path = (url ?? '/').split('?')[0] ?? '/';
  return exclude.some((rule) => (typeof rule === 'string' ? rule === path : rule.test(path)));
}

type Handler = (req: IncomingMessage, res: ServerResponse) => unknown;

const BODY_BYTES = Symbol('pgsight.bodyBytes');

/**
 * The response size: Node adds an implicit Content-Length only while writing the head, so the response's
 * headers do not show it; the body bytes written are counted instead.
 */
function countBodyBytes(res: ServerResponse): void {
  const counted = res as ServerResponse & { [BODY_BYTES]?: number };
  counted[BODY_BYTES] = 0;
  const size = (chunk: unknown, encoding?: unknown) =>
    typeof chunk === 'string'
      ? Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
      : chunk instanceof Uint8Array
        ? chunk.byteLength
        : 0;
  const write = res.write;
  const end = res.end;
  res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    counted[BODY_BYTES] = (counted[BODY_BYTES] ?? 0) + size(chunk, rest[0]);
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as ServerResponse['write'];
  res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    if (chunk !== undefined && typeof chunk !== 'function')
      counted[BODY_BYTES] = (counted[BODY_BYTES] ?? 0) + size(chunk, rest[0]);
    return (end as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
  } as ServerResponse['end'];
}

/**
 * Wrap a node:http request handler: `createServer(requestLogging({ logger })(handler))`. A handler that throws
 * or rejects gets a 500 with a generic body (no internals), and its error is on the completion record.
 */
export function requestLogging(options: RequestLoggingOptions): (handler: Handler) => Handler {
  const header = (options.header ?? 'x-request-id').toLowerCase();
  const exclude = options.exclude ?? ['/healthz', '/readyz', '/livez'];
  const http = pinoHttp({
    logger: options.logger,
    genReqId: (req, res) => {
      const id = requestId(req, header);
      res.setHeader(header, id);
      return id;
    },
    autoLogging: { ignore: (req) => excluded(req.url, exclude) },
    customLogLevel: (_req, res, err?: unknown) => (err || res.statusCode >= 500 ? 'error' : 'info'),
    customProps: (req, res) => {
      const route = options.route?.(req);
      const bytes = (res as ServerResponse & { [BODY_BYTES]?: number })[BODY_BYTES];
      return {
        ...(route ? { 'http.route': route } : {}),
        ...(bytes !== undefined ? { 'http.response.body.bytes': bytes } : {}),
      };
    },
  });
  return (handler) => (req, res) => {
    countBodyBytes(res);
    http(req, res);
    const id = String((req as IncomingMessage & { id?: unknown }).id);
    const traceId = trace.getActiveSpan()?.spanContext().traceId;
    const context = traceId ? { 'http.request.id': id, 'trace.id': traceId } : { 'http.request.id': id };
    const labels = requestLabels(req.method, req.url, options.route?.(req));
    // The request's queries are counted for N+1 (query-tally.ts) until its response is closed.
    return withQueryTally('request', labels, currentLogScope(), (tally, opened) => {
      if (opened) res.once('close', () => closeTally(tally));
      return withLogContext(context, async () => {
        try {
          await handler(req, res);
        } catch (error) {
          // pino-http puts `res.err` on the completion record.
          (res as ServerResponse & { err?: Error }).err =
            error instanceof Error ? error : new Error(String(error));
          if (!res.headersSent) {
            res.statusCode = 500;
            res.setHeader('content-type', 'application/json');
            res.end('{"error":"internal server error"}');
          } else res.end();
        }
      });
    });
  };
}

/**
 * The fastify plugin: request ids from `x-request-id` (or generated) echoed in the response, and the id and
 * trace id bound to the log context of each request. Completion and error records are fastify's own
 * (give fastify the logger: `Fastify({ loggerInstance: createLogger(), genReqId: fastifyRequestId() })`).
 */
export function fastifyRequestLogging(
  // biome-ignore lint/suspicious/noExplicitAny: any fastify instance; fastify is not a dependency of pgsight
  fastify: { addHook: (name: 'onRequest', hook: any) => unknown },
  options: { header?: string },
  done: () => void,
): void {
  const header = (options.header ?? 'x-request-id').toLowerCase();
  fastify.addHook('onRequest', ((
    request: { id: string; method?: string; url?: string; routeOptions?: { url?: string } },
    reply: { header: (k: string, v: string) => void; raw?: ServerResponse },
    next: () => void,
  ) => {
    reply.header(header, request.id);
    const traceId = trace.getActiveSpan()?.spanContext().traceId;
    const labels = requestLabels(request.method, request.url, request.routeOptions?.url);
    withQueryTally('request', labels, currentLogScope(), (tally, opened) => {
      if (opened) reply.raw?.once('close', () => closeTally(tally));
      withLogContext(
        traceId ? { 'http.request.id': request.id, 'trace.id': traceId } : { 'http.request.id': request.id },
        next,
      );
    });
  }) as never);
  done();
}
// Hooks apply to the whole application, not only to an encapsulated child context.
(fastifyRequestLogging as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

/** fastify's `genReqId`: keep a valid incoming `x-request-id`, otherwise generate one. */
export function fastifyRequestId(header = 'x-request-id'): (req: IncomingMessage) => string {
  return (req) => requestId(req, header.toLowerCase());
}
