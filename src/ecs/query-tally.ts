/**
 * N+1 detection: executions counted per statement within one request or one `transaction()`, reported once
 * when that scope ends for every statement (by fingerprint) run at least PGSIGHT_N_PLUS_ONE_MIN times.
 *
 *   request / transaction() ── withTally ──▶ log scope carries the tally ──▶ each query: counts[text].n++
 *        │ ends (response closed, transaction settled)
 *        └──▶ closeTally: group the texts by fingerprint ─▶ one `db.query.n_plus_one` record per group over
 *             the minimum; the rest of a transaction's counts join the request's around it
 *
 * Counted when a query starts, so queries started together (`Promise.all`) count like a loop's; independent
 * of trace sampling. The cost per query is one Map update keyed by the statement text (no normalization:
 * texts are grouped by fingerprint only when the scope ends, and only when it ran enough queries to matter).
 * The call site is captured once per statement and scope, on the execution that reaches the minimum: an
 * N+1 runs from one place, so that is its first call site too.
 */
import { type SpanContext, trace } from '@opentelemetry/api';
import { type NamespaceSource, namespaceOf } from '../pg/namespace.js';
import type { NormalizedQuery } from '../pg/normalize.js';
import { dbEvent } from './fields.js';
import { inLogScope, type LogScope, withTally } from './log-context.js';
import { captureCallSite, type Origin, originFields } from './origin.js';
import { pgsightLogger } from './pgsight-logger.js';

export type TallyKind = 'request' | 'transaction';

export interface QueryCount {
  n: number;
  /** Their total duration, ms (added as each ends). */
  ms: number;
  namespace: string | undefined;
  origin: Origin | undefined;
}

export interface QueryTally {
  readonly kind: TallyKind;
  readonly parent: QueryTally | undefined;
  /** `url.path`, `http.request.method`, `http.route` of a request, for the record. */
  readonly labels: Record<string, unknown> | undefined;
  counts: Map<string, QueryCount> | undefined;
  total: number;
  closed: boolean;
  /** The log scope and the span of the first query counted: the record is written in them. */
  scope: LogScope | undefined;
  spanContext: SpanContext | undefined;
}

interface TallySettings {
  /** 0: nothing is counted. */
  min: number;
  ignore: RegExp | undefined;
  normalize: ((text: string) => NormalizedQuery) | undefined;
}

let settings: TallySettings = { min: 0, ignore: undefined, normalize: undefined };

/** The preload's settings (PGSIGHT_N_PLUS_ONE_MIN, PGSIGHT_N_PLUS_ONE_IGNORE) and its normalizer. */
export function setTallySettings(next: TallySettings): void {
  settings = next;
}

/** Distinct statement texts counted per scope; beyond, new texts are not counted (a scope's memory is bounded). */
const MAX_TEXTS = 500;
/** Frames captured for the call site: enough to get past pg, pg-pool and an ORM's own. */
const CALL_SITE_FRAMES = 24;

/**
 * Run `fn` in a new tally of `kind`, unless the current one is already of that kind (a request's logging
 * inside the preload's own request scope, a transaction inside a transaction): then in that one. Returns
 * the tally `fn` ran in and whether it was opened here (only the opener closes it).
 */
export function withQueryTally<T>(
  kind: TallyKind,
  labels: Record<string, unknown> | undefined,
  current: LogScope | undefined,
  fn: (tally: QueryTally, opened: boolean) => T,
): T {
  const open = current?.tally as QueryTally | undefined;
  if (settings.min === 0 || (open !== undefined && !open.closed && open.kind === kind))
    return fn(open as QueryTally, false);
  const tally: QueryTally = {
    kind,
    parent: open !== undefined && !open.closed ? open : undefined,
    // A transaction inside a request reports that request's endpoint.
    labels: labels ?? (open !== undefined && !open.closed ? open.labels : undefined),
    counts: undefined,
    total: 0,
    closed: false,
    scope: undefined,
    spanContext: undefined,
  };
  return withTally(tally, () => fn(tally, true));
}

/** A request's `http.request.method`, `url.path` (the query string left out) and `http.route`, for the record. */
export function requestLabels(
  method: string | undefined,
  url: string | undefined,
  route: string | undefined,
): Record<string, unknown> {
  const path = url?.split('?', 1)[0];
  return {
    http: { request: { method }, ...(route ? { route } : {}) },
    ...(path ? { url: { path } } : {}),
  };
}

/** Count one execution of `text` in the scope's tally; the returned count gets the query's duration. */
export function countQuery(
  scope: LogScope,
  text: string,
  client: NamespaceSource | undefined,
  above: (...args: never[]) => unknown,
): QueryCount | undefined {
  const tally = scope.tally as QueryTally | undefined;
  if (tally === undefined || tally.closed || settings.min === 0) return undefined;
  if (tally.total++ === 0) {
    tally.scope = scope;
    tally.spanContext = trace.getActiveSpan()?.spanContext();
  }
  tally.counts ??= new Map();
  let count = tally.counts.get(text);
  if (count === undefined) {
    if (tally.counts.size >= MAX_TEXTS) return undefined;
    count = { n: 0, ms: 0, namespace: client && namespaceOf(client), origin: undefined };
    tally.counts.set(text, count);
  }
  if (++count.n === settings.min) count.origin = captureCallSite(above, CALL_SITE_FRAMES);
  return count;
}

interface Group {
  query: NormalizedQuery;
  n: number;
  ms: number;
  namespace: string | undefined;
  origin: Origin | undefined;
  texts: string[];
}

/** End a tally: report its N+1 statements, and hand the rest to the scope around it. Never throws. */
export function closeTally(tally: QueryTally): void {
  if (tally.closed) return;
  tally.closed = true;
  const counts = tally.counts;
  tally.counts = undefined;
  if (counts === undefined) return;
  const { min, normalize } = settings;
  const parent = tally.parent && !tally.parent.closed ? tally.parent : undefined;
  if (tally.total < min || normalize === undefined) {
    if (parent) for (const [text, count] of counts) merge(parent, text, count);
    return;
  }
  try {
    const groups = new Map<string, Group>();
    for (const [text, count] of counts) {
      const query = normalize(text);
      let group = groups.get(query.fingerprint);
      if (group === undefined) {
        group = { query, n: 0, ms: 0, namespace: count.namespace, origin: undefined, texts: [] };
        groups.set(query.fingerprint, group);
      }
      group.n += count.n;
      group.ms += count.ms;
      group.origin ??= count.origin;
      group.texts.push(text);
    }
    for (const group of groups.values()) {
      if (group.n >= min && !settings.ignore?.test(group.query.text)) report(tally, group);
      else if (parent) for (const text of group.texts) merge(parent, text, counts.get(text) as QueryCount);
    }
  } catch {
    // A record that cannot be written is skipped; the app's request is already over.
  }
}

/** End a tally without a report (a transaction attempt that is run again). */
export function dropTally(tally: QueryTally): void {
  tally.closed = true;
  tally.counts = undefined;
}

function merge(parent: QueryTally, text: string, count: QueryCount): void {
  parent.counts ??= new Map();
  const into = parent.counts.get(text);
  if (into === undefined) {
    if (parent.counts.size < MAX_TEXTS) parent.counts.set(text, { ...count });
  } else {
    into.n += count.n;
    into.ms += count.ms;
    into.origin ??= count.origin;
  }
  parent.total += count.n;
}

function report(tally: QueryTally, group: Group): void {
  const { query } = group;
  const record: Record<string, unknown> = {
    event: dbEvent('db.query.n_plus_one', undefined, group.ms),
    db: {
      system: { name: 'postgresql' },
      ...(group.namespace ? { namespace: group.namespace } : {}),
      operation: { name: query.operation },
      ...(query.collection ? { collection: { name: query.collection } } : {}),
      query: {
        text: query.text,
        fingerprint: query.fingerprint,
        ...(query.summary ? { summary: query.summary } : {}),
        repetitions: group.n,
      },
    },
    ...(group.origin ? originFields(group.origin, true) : {}),
    ...tally.labels,
  };
  if (tally.spanContext) {
    record.trace = { id: tally.spanContext.traceId };
    record.span = { id: tally.spanContext.spanId };
  }
  inLogScope(tally.scope, () =>
    pgsightLogger().warn(
      record,
      `N+1: the same statement ran ${group.n} times in one ${tally.kind} (${group.ms.toFixed(1)} ms in all): ${query.text}`,
    ),
  );
}
