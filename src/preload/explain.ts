/**
 * The plan of a slow statement, from the server, without running it: `EXPLAIN (FORMAT JSON)`, never ANALYZE,
 * on pgsight's own connection (side-connection.ts), in a read-only transaction with short timeouts, at most
 * once per fingerprint per PGSIGHT_EXPLAIN_INTERVAL_MS.
 *
 * No parameter value reaches a plan: a statement with `$n` parameters is planned generically, with
 * `EXPLAIN (GENERIC_PLAN)` on PostgreSQL 16+ and, before, `PREPARE` under `plan_cache_mode =
 * force_generic_plan` then `EXPLAIN EXECUTE` with NULLs (which a generic plan does not look at). Constants
 * the statement itself holds are folded into the plan's expressions by the server: every string of the plan
 * but the names of nodes and relations goes through the statements' normalization (literals become `?`).
 *
 * A statement with a `;` anywhere but at its end is never explained: sent as one simple-protocol string it
 * could be more than one statement, and pgsight must not depend on its lexer agreeing with the server's.
 */
import type { NormalizedQuery } from '../pg/normalize.js';
import type { SideConnection } from './side-connection.js';

export interface PlanSettings {
  /** 0: no plans. */
  intervalMs: number;
  exclude: RegExp | undefined;
}

export interface QueryPlan {
  node_type: string | undefined;
  total_cost: number | undefined;
  rows: number | undefined;
  /** The relations read by sequential scans, as the plan names them. */
  seq_scans: string[];
  /** Planned without parameter values (the statement had `$n` parameters). */
  generic: boolean;
  /** The plan, literals masked, as JSON; cut at MAX_PLAN_TEXT characters. */
  text: string;
  truncated?: true;
}

const EXPLAINABLE = new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE']);
const MAX_PLAN_TEXT = 8000;
const PLAN_STATEMENT_TIMEOUT_MS = 1000;
const PLAN_LOCK_TIMEOUT_MS = 200;
/** Fingerprints remembered for the interval; the oldest go first beyond this. */
const MAX_REMEMBERED = 10_000;
const STATEMENT = 'pgsight_explain';

/** Plan keys whose strings are names, kept as they are; every other string is an expression, normalized. */
const NAME_KEYS = new Set([
  'Node Type',
  'Relation Name',
  'Schema',
  'Alias',
  'Index Name',
  'CTE Name',
  'Function Name',
  'Parent Relationship',
  'Subplan Name',
  'Join Type',
  'Strategy',
  'Scan Direction',
  'Operation',
  'Partial Mode',
  'Command',
  'Sort Method',
  'Sort Space Type',
]);

const explainedAt = new Map<string, number>();

/**
 * Whether a plan is wanted for this statement now, and if so, the interval starts: one plan per fingerprint
 * per interval, even while the first is still being made.
 */
export function claimPlan(settings: PlanSettings, query: NormalizedQuery, client: object): boolean {
  if (settings.intervalMs === 0 || !EXPLAINABLE.has(query.operation ?? '')) return false;
  if ((client as { getTransactionStatus?: () => string | null }).getTransactionStatus?.() === 'E')
    return false;
  if (settings.exclude?.test(query.text)) return false;
  const now = performance.now();
  const last = explainedAt.get(query.fingerprint);
  if (last !== undefined && now - last < settings.intervalMs) return false;
  explainedAt.delete(query.fingerprint);
  if (explainedAt.size >= MAX_REMEMBERED) explainedAt.delete(explainedAt.keys().next().value as string);
  explainedAt.set(query.fingerprint, now);
  return true;
}

/** For tests: forget which fingerprints were explained. */
export function forgetPlans(): void {
  explainedAt.clear();
}

/** The statement's plan, or undefined when it cannot be had (a timeout, a statement the server refuses). */
export async function explain(
  side: SideConnection,
  text: string,
  normalize: (sql: string) => NormalizedQuery,
): Promise<QueryPlan | undefined> {
  const body = text.replace(/;\s*$/, '');
  if (body.includes(';')) return undefined;
  const generic = /\$\d/.test(body);
  let prepared = false;
  let rows: Record<string, unknown>[] | undefined;
  await side.query('BEGIN READ ONLY');
  try {
    await side.query(`SET LOCAL statement_timeout = ${PLAN_STATEMENT_TIMEOUT_MS}`);
    await side.query(`SET LOCAL lock_timeout = ${PLAN_LOCK_TIMEOUT_MS}`);
    if (!generic) rows = await side.query(`EXPLAIN (FORMAT JSON) ${body}`, [], true);
    else if (side.serverVersion >= 160000)
      // Simple protocol: bound values (even NULLs) would be planned with, and GENERIC_PLAN takes none.
      rows = await side.query(`EXPLAIN (GENERIC_PLAN, FORMAT JSON) ${body}`);
    else {
      await side.query('SET LOCAL plan_cache_mode = force_generic_plan');
      await side.query(`PREPARE ${STATEMENT} AS ${body}`, [], true);
      prepared = true;
      const [types] = await side.query(
        `SELECT cardinality(parameter_types) AS n FROM pg_prepared_statements WHERE name = '${STATEMENT}'`,
      );
      const nulls = Array.from({ length: Number(types?.n) || 0 }, () => 'NULL').join(', ');
      rows = await side.query(`EXPLAIN (FORMAT JSON) EXECUTE ${STATEMENT}${nulls ? `(${nulls})` : ''}`);
    }
  } catch {
    rows = undefined;
  } finally {
    await side.query('ROLLBACK').catch(() => undefined);
    // A prepared statement outlives its transaction's rollback.
    if (prepared) await side.query(`DEALLOCATE ${STATEMENT}`).catch(() => undefined);
  }
  const root = (rows?.[0]?.['QUERY PLAN'] as { Plan?: PlanNode }[] | undefined)?.[0]?.Plan;
  return root ? summarize(mask(root, normalize) as PlanNode, generic) : undefined;
}

type PlanNode = Record<string, unknown> & { Plans?: PlanNode[] };

/** The plan with every expression string normalized (constants the server folded in become `?`). */
function mask(value: unknown, normalize: (sql: string) => NormalizedQuery, key?: string): unknown {
  if (typeof value === 'string')
    return key !== undefined && NAME_KEYS.has(key) ? value : normalize(value).text;
  if (Array.isArray(value)) return value.map((item) => mask(item, normalize, key));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = mask(v, normalize, k);
  return out;
}

function summarize(root: PlanNode, generic: boolean): QueryPlan {
  const seqScans: string[] = [];
  const visit = (node: PlanNode) => {
    if (node['Node Type'] === 'Seq Scan' && typeof node['Relation Name'] === 'string')
      seqScans.push(node['Relation Name']);
    for (const child of node.Plans ?? []) visit(child);
  };
  visit(root);
  const json = JSON.stringify(root);
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
  return {
    node_type: typeof root['Node Type'] === 'string' ? root['Node Type'] : undefined,
    total_cost: num(root['Total Cost']),
    rows: num(root['Plan Rows']),
    seq_scans: [...new Set(seqScans)],
    generic,
    text: json.length > MAX_PLAN_TEXT ? json.slice(0, MAX_PLAN_TEXT) : json,
    ...(json.length > MAX_PLAN_TEXT ? { truncated: true as const } : {}),
  };
}
