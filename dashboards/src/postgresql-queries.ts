/**
 * PostgreSQL queries: the query records pgsight writes, one per query that took at least
 * PGSIGHT_SLOW_QUERY_MS (db.query.slow) and one per failed query (db.query.error). With
 * PGSIGHT_SLOW_QUERY_MS=0 every query is recorded and these panels cover all traffic.
 */
import { col, dashboardFile, type Panel, search, table, xy } from './kibana.ts';

const QUERIES = 'event.action : ("db.query.slow" or "db.query.error")';
const SLOW = 'event.action : "db.query.slow"';
/** Records whose sample found blockers (a query may be recorded running, then slow or failed). */
const BLOCKED = 'event.action : ("db.query.slow" or "db.query.error") and db.query.blocked_by.pid : *';

const panels: Panel[] = [
  {
    x: 0,
    y: 0,
    w: 24,
    h: 12,
    object: xy({
      id: 'pgsight-queries-count-duration',
      title: 'Query count and cumulated duration',
      description: 'Recorded queries per interval (left) and the time they took together (right).',
      query: QUERIES,
      series: 'line',
      columns: {
        time: col.time(),
        queries: col.count('Queries'),
        total: col.metric('sum', 'event.duration', 'Cumulated duration'),
      },
      x: 'time',
      y: ['queries', 'total'],
      right: ['total'],
    }),
  },
  {
    x: 24,
    y: 0,
    w: 24,
    h: 12,
    object: xy({
      id: 'pgsight-queries-slow-over-time',
      title: 'Slow queries over time',
      description: 'Queries at or over PGSIGHT_SLOW_QUERY_MS, by operation.',
      query: SLOW,
      series: 'bar_stacked',
      columns: {
        time: col.time(),
        operation: col.terms('db.operation.name', 'Operation', 'slow', 8),
        slow: col.distinct('Slow queries'),
      },
      x: 'time',
      y: ['slow'],
      split: 'operation',
    }),
  },
  {
    x: 0,
    y: 12,
    w: 48,
    h: 15,
    object: table({
      id: 'pgsight-queries-top-fingerprints',
      title: 'Top fingerprints by total time',
      description: 'Normalized statements that took the most time together, with calls, p95 and max.',
      query: QUERIES,
      columns: {
        fingerprint: col.terms('db.query.fingerprint', 'Fingerprint', 'total', 20),
        statement: col.terms('db.query.text.keyword', 'Statement', 'total', 1),
        total: col.metric('sum', 'event.duration', 'Total time'),
        calls: col.count('Calls'),
        p95: col.percentile('event.duration', 95, 'p95'),
        max: col.metric('max', 'event.duration', 'Max'),
      },
    }),
  },
  {
    x: 0,
    y: 27,
    w: 24,
    h: 12,
    object: xy({
      id: 'pgsight-queries-p95-by-operation',
      title: 'p95 by operation',
      description: 'p95 duration per db.operation.name.',
      query: QUERIES,
      series: 'bar',
      columns: {
        operation: col.terms('db.operation.name', 'Operation', 'p95', 10),
        p95: col.percentile('event.duration', 95, 'p95'),
      },
      x: 'operation',
      y: ['p95'],
    }),
  },
  {
    x: 24,
    y: 27,
    w: 24,
    h: 12,
    object: xy({
      id: 'pgsight-queries-duration-histogram',
      title: 'Query duration histogram',
      description: 'How recorded query durations are distributed.',
      query: QUERIES,
      series: 'bar',
      columns: {
        duration: col.histogram('event.duration', 'Duration'),
        queries: col.count('Queries'),
      },
      x: 'duration',
      y: ['queries'],
    }),
  },
  {
    x: 0,
    y: 39,
    w: 24,
    h: 15,
    object: table({
      id: 'pgsight-queries-blocked',
      title: 'Blocked queries: top blockers',
      description:
        'Slow and failed queries that waited on another backend (db.query.blocked_by, sampled while they ran): the blocking statement by fingerprint, where its transaction was opened (when this service opened it), how often and how long.',
      query: BLOCKED,
      columns: {
        fingerprint: col.terms('db.query.blocked_by.query.fingerprint', 'Blocker fingerprint', 'blocked', 10),
        statement: col.terms('db.query.blocked_by.query.text.keyword', 'Blocker statement', 'blocked', 1),
        origin: col.terms('db.query.blocked_by.origin.file', 'Opened in', 'blocked', 1),
        blocked: col.count('Queries blocked'),
        wait: col.metric('max', 'event.duration', 'Longest blocked query'),
      },
    }),
  },
  {
    x: 24,
    y: 39,
    w: 24,
    h: 15,
    object: table({
      id: 'pgsight-queries-seq-scans',
      title: 'Sequential scans in slow plans',
      description:
        'Relations read by a sequential scan in the plans of slow statements (db.query.plan, one generic plan per fingerprint and PGSIGHT_EXPLAIN_INTERVAL_MS), by relation and statement.',
      query: `${SLOW} and db.query.plan.seq_scans : *`,
      columns: {
        relation: col.terms('db.query.plan.seq_scans', 'Relation', 'plans', 10),
        statement: col.terms('db.query.text.keyword', 'Statement', 'plans', 3),
        plans: col.count('Plans'),
        cost: col.metric('max', 'db.query.plan.total_cost', 'Max total cost'),
      },
    }),
  },
  {
    x: 0,
    y: 54,
    w: 48,
    h: 15,
    object: search({
      id: 'pgsight-queries-slow-table',
      title: 'Slow queries',
      description: 'Each slow query: its normalized text, duration, service and trace.',
      query: SLOW,
      columns: [
        'db.query.text',
        'event.duration',
        'db.query.wait.type',
        'db.query.plan.node_type',
        'service.name',
        'trace.id',
      ],
    }),
  },
];

export const postgresqlQueries = dashboardFile({
  file: 'pgsight-postgresql-queries.ndjson',
  id: 'pgsight-postgresql-queries',
  title: '[pgsight] PostgreSQL queries',
  description:
    'Slow and failed queries by fingerprint, operation and duration; what blocked them and the sequential scans in their plans.',
  panels,
});
