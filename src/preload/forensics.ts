/**
 * Why a query is slow, asked of the server while it still runs: its backend's wait event, the backends
 * blocking it (their state, last statement, transaction age, application name, and the code location that
 * opened the blocker's transaction when this process did), the server's query id, and its plan
 * (explain.ts). Everything is asked on pgsight's own connection (side-connection.ts).
 *
 *   query starts ─▶ linked at the tail of the in-flight list (a few pointer writes; unlinked when it ends)
 *   one sweep per quarter threshold ─▶ in-flight for PGSIGHT_SLOW_QUERY_MS? ─▶ one sample (rate-capped)
 *                                   ─▶ in-flight for 10x? ─▶ a plan, and a `db.query.running` record
 *   query ends slow ─▶ its record waits for the sample and the plan (each bounded by a statement timeout)
 *
 * A query that ends under the threshold costs its link and unlink; no timer, no promise. The sweep walks the
 * list from its oldest entry and stops at the first one younger than the threshold.
 */
import type { Attributes, Counter, Span } from '@opentelemetry/api';
import type { LogScope } from '../ecs/log-context.js';
import { type Origin, originFields } from '../ecs/origin.js';
import type { NormalizedQuery } from '../pg/normalize.js';
import { originOfBackend } from '../transaction/watchdog.js';
import { claimPlan, explain, type PlanSettings, type QueryPlan } from './explain.js';
import { sideConnectionFor } from './side-connection.js';

export interface ForensicsSettings {
  slowMs: number;
  /** Samples per second at most; 0: no samples. */
  perSecond: number;
  plans: PlanSettings;
  normalize: (sql: string) => NormalizedQuery;
  /** `pgsight.db.forensics.skipped`, by reason. */
  skipped: Counter | undefined;
  /** Writes the `db.query.running` record of a query in flight for 10x the threshold. */
  onRunning: (entry: InFlight, elapsedMs: number, fields: Record<string, unknown>) => void;
}

/** Why a query's record has no sample: over the rate cap, no side connection, the sample failed. */
export type SkipReason = 'rate' | 'connection' | 'failed';

/** One query in flight. */
export class InFlight {
  prev: InFlight | undefined;
  next: InFlight | undefined;
  linked = true;
  /** Swept past the threshold: a sample was taken or skipped. */
  swept = false;
  running = false;
  sample: Promise<Record<string, unknown>> | undefined;
  /** The sample's fields once it is in. */
  sampled: Record<string, unknown> | undefined;
  plan: Promise<QueryPlan | undefined> | undefined;

  constructor(
    readonly client: object,
    readonly text: string,
    readonly values: unknown,
    readonly start: number,
    readonly scope: LogScope | undefined,
    readonly span: Span | undefined,
  ) {}
}

let settings: ForensicsSettings | undefined;
let head: InFlight | undefined;
let tail: InFlight | undefined;
let sweeper: NodeJS.Timeout | undefined;
let tokens = 0;
let refilledAt = 0;

/** The preload's settings; undefined (or a threshold of 0) turns forensics off. */
export function setForensicsSettings(next: ForensicsSettings | undefined): void {
  settings = next && next.slowMs > 0 && (next.perSecond > 0 || next.plans.intervalMs > 0) ? next : undefined;
  clearInterval(sweeper);
  sweeper = undefined;
  tokens = settings?.perSecond ?? 0;
  refilledAt = performance.now();
}

/** A query started (undefined when forensics is off). */
export function queryStarted(
  client: object,
  text: string,
  values: unknown,
  start: number,
  scope: LogScope | undefined,
  span: Span | undefined,
): InFlight | undefined {
  const s = settings;
  if (s === undefined) return undefined;
  const entry = new InFlight(client, text, values, start, scope, span);
  entry.prev = tail;
  if (tail !== undefined) tail.next = entry;
  else head = entry;
  tail = entry;
  sweeper ??= setInterval(sweep, Math.max(10, Math.min(1000, Math.floor(s.slowMs / 4)))).unref();
  return entry;
}

/** The query ended: off the list. */
export function queryEnded(entry: InFlight): void {
  if (!entry.linked) return;
  entry.linked = false;
  if (entry.prev !== undefined) entry.prev.next = entry.next;
  else head = entry.next;
  if (entry.next !== undefined) entry.next.prev = entry.prev;
  else tail = entry.prev;
  entry.prev = undefined;
  entry.next = undefined;
}

function sweep(): void {
  const s = settings;
  if (s === undefined || head === undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
    return;
  }
  const now = performance.now();
  for (let entry: InFlight | undefined = head; entry !== undefined; entry = entry.next) {
    const age = now - entry.start;
    if (age < s.slowMs) break;
    if (!entry.swept) {
      entry.swept = true;
      if (s.perSecond > 0) {
        const sampling = entry;
        sampling.sample = sample(s, sampling, now).then((fields) => {
          sampling.sampled = fields;
          return fields;
        });
      }
    }
    if (!entry.running && age >= s.slowMs * 10) {
      entry.running = true;
      const running = entry;
      const query = s.normalize(entry.text);
      void (fieldsFor(running, query) ?? Promise.resolve({})).then((fields) => {
        try {
          s.onRunning(running, performance.now() - running.start, fields);
        } catch {
          // a record that cannot be written is skipped
        }
      });
    }
  }
}

function takeToken(s: ForensicsSettings, now: number): boolean {
  tokens = Math.min(s.perSecond, tokens + ((now - refilledAt) / 1000) * s.perSecond);
  refilledAt = now;
  if (tokens < 1) return false;
  tokens--;
  return true;
}

function skipped(s: ForensicsSettings, reason: SkipReason): Record<string, unknown> {
  s.skipped?.add(1, { reason } as Attributes);
  return { forensics: { skipped: reason } };
}

async function sample(s: ForensicsSettings, entry: InFlight, now: number): Promise<Record<string, unknown>> {
  if (!takeToken(s, now)) return skipped(s, 'rate');
  const pid = (entry.client as { processID?: number }).processID;
  const side = typeof pid === 'number' ? await sideConnectionFor(entry.client) : undefined;
  if (side === undefined || typeof pid !== 'number') return skipped(s, 'connection');
  try {
    const [row] = await side.exclusive(() => side.query(sampleStatement(side.serverVersion), [pid], true));
    if (row === undefined) return { server_pid: pid };
    return { server_pid: pid, ...sampleFields(s, row) };
  } catch {
    return { server_pid: pid, ...skipped(s, 'failed') };
  }
}

/** The one statement of a sample: the backend `$1`'s activity and its blockers'. */
export const sampleStatement = (serverVersion: number) => `
SELECT a.state, a.wait_event_type, a.wait_event${serverVersion >= 140000 ? ', a.query_id::text AS query_id' : ''},
  (SELECT coalesce(json_agg(json_build_object(
      'pid', b.pid, 'state', s.state, 'query', s.query, 'application_name', s.application_name,
      'xact_ms', extract(epoch FROM clock_timestamp() - s.xact_start) * 1000) ORDER BY b.pid), '[]'::json)
    FROM unnest(pg_blocking_pids(a.pid)) AS b(pid) LEFT JOIN pg_stat_activity s ON s.pid = b.pid) AS blockers
FROM pg_stat_activity a WHERE a.pid = $1`;

interface BlockerRow {
  pid: number;
  state: string | null;
  query: string | null;
  application_name: string | null;
  xact_ms: number | null;
}

function sampleFields(s: ForensicsSettings, row: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  if (row.state === 'active' && typeof row.wait_event_type === 'string')
    fields.wait = { type: row.wait_event_type, event: row.wait_event };
  if (typeof row.query_id === 'string' && row.query_id !== '0') fields.id = row.query_id;
  const blockers = Array.isArray(row.blockers) ? (row.blockers as BlockerRow[]) : [];
  if (blockers.length > 0) fields.blocked_by = blockers.map((b) => blocker(s, b));
  return fields;
}

/** One blocker, as the record names it: its statement normalized as pgsight's own are (literals never kept). */
function blocker(s: ForensicsSettings, b: BlockerRow): Record<string, unknown> {
  const out: Record<string, unknown> = { pid: b.pid };
  if (b.state) out.state = b.state;
  // Another role's backend shows `<insufficient privilege>` to a role without pg_read_all_stats.
  if (typeof b.query === 'string' && b.query !== '' && b.query !== '<insufficient privilege>') {
    const query = s.normalize(b.query);
    out.query = { text: query.text, fingerprint: query.fingerprint };
  }
  if (typeof b.xact_ms === 'number') out.transaction = { duration_ms: Math.round(b.xact_ms) };
  if (b.application_name) out.application_name = b.application_name;
  const origin = b.pid > 0 ? originOfBackend(b.pid) : undefined;
  if (origin) out.origin = originOf(origin);
  return out;
}

function originOf(origin: Origin): Record<string, unknown> | undefined {
  const at = (
    originFields(origin).log as { origin?: { file?: { name?: string; line?: number }; function?: string } }
  )?.origin;
  if (!at) return undefined;
  return { file: at.file?.name, line: at.file?.line, ...(at.function ? { function: at.function } : {}) };
}

function requestPlan(s: ForensicsSettings, entry: InFlight, query: NormalizedQuery): void {
  if (entry.plan !== undefined || !claimPlan(s.plans, query, entry.client)) return;
  entry.plan = sideConnectionFor(entry.client).then((side) =>
    side ? side.exclusive(() => explain(side, entry.text, s.normalize)).catch(() => undefined) : undefined,
  );
}

/**
 * The `db.query.*` fields forensics adds to a slow query's record (wait, blockers, query id, plan, or why
 * there is no sample), once its sample and plan are in; undefined when there is nothing to wait for.
 */
export function fieldsFor(
  entry: InFlight | undefined,
  query: NormalizedQuery,
  failed = false,
): Promise<Record<string, unknown>> | undefined {
  const s = settings;
  if (s === undefined || entry === undefined) return undefined;
  if (!failed) requestPlan(s, entry, query);
  if (entry.sample === undefined && entry.plan === undefined) return undefined;
  return Promise.all([entry.sample, entry.plan]).then(
    ([sampled, plan]) => ({ ...sampled, ...(plan && !failed ? { plan } : {}) }),
    () => ({}),
  );
}

/** Records waiting for their forensics: a flush at exit waits for them. */
const pendingRecords = new Set<Promise<unknown>>();

export function holdRecord(written: Promise<unknown>): void {
  pendingRecords.add(written);
  void written.finally(() => pendingRecords.delete(written));
}

/** Settles once every record waiting for its forensics now is written. */
export function recordsWritten(): Promise<void> {
  return Promise.allSettled([...pendingRecords]).then(() => undefined);
}

/** Span attributes for the fields (flat, as spans want them). */
export function spanAttributes(fields: Record<string, unknown>): Attributes {
  const attributes: Attributes = {};
  if (typeof fields.server_pid === 'number') attributes['pgsight.query.server_pid'] = fields.server_pid;
  const wait = fields.wait as { type?: string; event?: string } | undefined;
  if (wait?.type) attributes['pgsight.query.wait.type'] = wait.type;
  if (wait?.event) attributes['pgsight.query.wait.event'] = wait.event;
  const blockers = fields.blocked_by as { pid: number }[] | undefined;
  if (blockers) attributes['pgsight.query.blocked_by'] = blockers.map((b) => b.pid);
  if (typeof fields.id === 'string') attributes['pgsight.query.id'] = fields.id;
  const plan = fields.plan as QueryPlan | undefined;
  if (plan?.node_type) attributes['pgsight.query.plan.node_type'] = plan.node_type;
  if (plan?.seq_scans.length) attributes['pgsight.query.plan.seq_scans'] = plan.seq_scans;
  return attributes;
}
