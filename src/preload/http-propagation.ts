/**
 * HTTP context propagation for when nothing consumes telemetry (no exporter, no span processor, no metric
 * reader): what `@opentelemetry/instrumentation-http` would do there, minus the work nobody reads.
 *
 *   incoming request ─▶ traceparent extracted ─▶ lazy SERVER span ─▶ handler, and the request's and
 *                       response's events, run in its context (logs and queries carry its trace id)
 *   outgoing request ─▶ traceparent injected from the active context (node:http, node:https, and fetch /
 *                       undici through its diagnostics channel)
 *
 * Why hand-written: in that mode instrumentation-http still computes its span and metric attributes before
 * the span starts and binds every listener method of each request and response emitter: on the ledger
 * benchmark that was the whole gap to its overhead target (docs/design.md#propagation-only-spans).
 * With an exporter, span processors or metric readers, instrumentation-http is used as usual, and only the
 * server hook's other part stays: each request's queries counted for N+1 (query-tally.ts).
 */
import diagnostics from 'node:diagnostics_channel';
import type { EventEmitter } from 'node:events';
import type http from 'node:http';
import type https from 'node:https';
import { syncBuiltinESMExports } from 'node:module';
import {
  type Context,
  context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  type TextMapSetter,
  trace,
} from '@opentelemetry/api';
import { currentLogScope } from '../ecs/log-context.js';
import { closeTally, requestLabels, withQueryTally } from '../ecs/query-tally.js';

const PATCHED = Symbol.for('pgsight.httpPropagation');

const setHeader: TextMapSetter<http.ClientRequest> = {
  set(request, key, value) {
    if (!request.headersSent) request.setHeader(key, value);
  },
};

/** Run every event of `emitter` in `ctx`: one wrapper per request, not one per listener method. */
function emitIn(emitter: EventEmitter, ctx: Context): void {
  const emit = emitter.emit;
  emitter.emit = function (this: EventEmitter, ...args: Parameters<EventEmitter['emit']>) {
    return context.with(ctx, emit, this, ...args);
  } as EventEmitter['emit'];
}

/**
 * Each incoming request's queries are counted for N+1 (query-tally.ts) until its response is closed; with
 * `propagate`, the request also gets its trace context here (nothing consumes telemetry).
 */
function patchServer(Server: typeof http.Server, propagate: boolean): void {
  const proto = Server.prototype as unknown as Record<string | symbol, unknown>;
  if (proto[PATCHED]) return;
  const emit = proto.emit as (this: http.Server, event: string | symbol, ...args: unknown[]) => boolean;
  proto.emit = function (this: http.Server, event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'request') return emit.call(this, event, ...args);
    const request = args[0] as http.IncomingMessage;
    const response = args[1] as http.ServerResponse;
    const counted = () =>
      withQueryTally(
        'request',
        requestLabels(request.method, request.url, undefined),
        currentLogScope(),
        (tally, opened) => {
          if (opened) response.once('close', () => closeTally(tally));
          return emit.call(this, event, ...args);
        },
      );
    if (!propagate) return counted();
    const parent = propagation.extract(ROOT_CONTEXT, request.headers);
    const span = trace
      .getTracer('pgsight')
      .startSpan(request.method ?? 'HTTP', { kind: SpanKind.SERVER }, parent);
    const ctx = trace.setSpan(parent, span);
    emitIn(request, ctx);
    emitIn(response, ctx);
    return context.with(ctx, counted);
  };
  proto[PATCHED] = true;
}

function patchClient(module: typeof http | typeof https): void {
  const exports = module as unknown as Record<string | symbol, unknown>;
  if (exports[PATCHED]) return;
  const request = module.request as (...args: unknown[]) => http.ClientRequest;
  const withTraceparent = function (this: unknown, ...args: unknown[]): http.ClientRequest {
    const outgoing = request.apply(this, args);
    const active = trace.getSpanContext(context.active());
    if (active && isSpanContextValid(active)) propagation.inject(context.active(), outgoing, setHeader);
    return outgoing;
  };
  exports.request = withTraceparent;
  // http.get calls the module's own request, not the export: it is rebuilt on the patched one.
  exports.get = function (this: unknown, ...args: unknown[]): http.ClientRequest {
    const outgoing = withTraceparent.apply(this, args);
    outgoing.end();
    return outgoing;
  };
  exports[PATCHED] = true;
}

/** The part of undici's request object (its `undici:request:create` diagnostics message) used here. */
interface UndiciRequest {
  addHeader(name: string, value: string): unknown;
}
const addHeader: TextMapSetter<UndiciRequest> = {
  set(request, key, value) {
    request.addHeader(key, value);
  },
};

/**
 * fetch() and undici: their requests are announced on the `undici:request:create` diagnostics channel (Node's
 * global fetch publishes there too), in the caller's context; the traceparent is added as a header.
 */
function propagateUndici(): void {
  diagnostics.subscribe('undici:request:create', (message) => {
    const request = (message as { request?: UndiciRequest }).request;
    const active = trace.getSpanContext(context.active());
    if (request && typeof request.addHeader === 'function' && active && isSpanContextValid(active))
      propagation.inject(context.active(), request, addHeader);
  });
}

/**
 * The preload's HTTP hooks. `propagate` (nothing consumes telemetry): trace context in and out, as above;
 * otherwise instrumentation-http does that, and only the server's request scope is added here.
 */
export function installHttpHooks(propagate: boolean): void {
  // Not `import http from 'node:http'`: an ES module namespace of http reads all its exports, and one of
  // them (http.WebSocket) loads Node's bundled undici, about 20 ms of every start.
  const http = process.getBuiltinModule('node:http');
  const https = process.getBuiltinModule('node:https');
  patchServer(http.Server, propagate);
  patchServer(https.Server as unknown as typeof http.Server, propagate);
  if (!propagate) return;
  propagateUndici();
  patchClient(http);
  patchClient(https);
  // `import { get } from 'node:http'` in ESM sees the patched functions too.
  syncBuiltinESMExports();
}
