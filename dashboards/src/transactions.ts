/**
 * Transactions: the db.transaction.* records of pgsight's transaction toolkit. Committed transactions are
 * recorded at debug level (PGSIGHT_LOG_LEVEL=debug shows them in "Outcomes over time"); rollbacks, retries,
 * exhausted retries and long / idle transactions at info or warn.
 */
import { col, dashboardFile, metric, type Panel, search, table, xy } from './kibana.ts';

const ENDED = 'event.action : "db.transaction.end"';
const LONG_OR_IDLE = 'event.action : ("db.transaction.long" or "db.transaction.idle")';

const panels: Panel[] = [
  {
    x: 0,
    y: 0,
    w: 24,
    h: 12,
    object: xy({
      id: 'pgsight-tx-outcomes',
      title: 'Outcomes over time',
      description: 'Outermost transactions per interval, by db.transaction.outcome.',
      query: ENDED,
      series: 'bar_stacked',
      columns: {
        time: col.time(),
        outcome: col.terms('db.transaction.outcome', 'Outcome', 'transactions', 5),
        transactions: col.count('Transactions'),
      },
      x: 'time',
      y: ['transactions'],
      split: 'outcome',
    }),
  },
  {
    x: 24,
    y: 0,
    w: 24,
    h: 12,
    object: xy({
      id: 'pgsight-tx-retries-by-sqlstate',
      title: 'Retries by SQLSTATE',
      description: 'Attempts re-run per interval, by the SQLSTATE that caused them (40001, 40P01...).',
      query: 'event.action : "db.transaction.retry"',
      series: 'bar_stacked',
      columns: {
        time: col.time(),
        sqlstate: col.terms('db.response.status_code', 'SQLSTATE', 'retries', 10),
        retries: col.distinct('Retries'),
      },
      x: 'time',
      y: ['retries'],
      split: 'sqlstate',
    }),
  },
  {
    x: 0,
    y: 12,
    w: 16,
    h: 12,
    object: xy({
      id: 'pgsight-tx-attempts',
      title: 'Attempts per transaction',
      description: 'How many attempts transactions needed (1 = no retry).',
      query: ENDED,
      series: 'bar',
      columns: {
        attempts: col.terms('db.transaction.attempt', 'Attempts', 'alphabetical', 10, 'number'),
        transactions: col.count('Transactions'),
      },
      x: 'attempts',
      y: ['transactions'],
    }),
  },
  {
    x: 16,
    y: 12,
    w: 8,
    h: 12,
    object: metric({
      id: 'pgsight-tx-retries-exhausted',
      title: 'Retries exhausted',
      description: 'Transactions that failed after their last allowed attempt.',
      query: `${ENDED} and db.transaction.outcome : "retries_exhausted"`,
      columns: { exhausted: col.count('Retries exhausted') },
      value: 'exhausted',
    }),
  },
  {
    x: 24,
    y: 12,
    w: 24,
    h: 12,
    object: table({
      id: 'pgsight-tx-long-idle-by-origin',
      title: 'Long and idle transactions by origin',
      description: 'Where the transactions that stayed open too long, or idle, were opened.',
      query: LONG_OR_IDLE,
      columns: {
        file: col.terms('log.origin.file.name', 'File', 'count', 20),
        line: col.terms('log.origin.file.line', 'Line', 'count', 5, 'number'),
        kind: col.terms('event.action', 'Kind', 'count', 2),
        count: col.count('Transactions'),
        longest: col.metric('max', 'event.duration', 'Longest open'),
      },
    }),
  },
  {
    x: 0,
    y: 24,
    w: 48,
    h: 15,
    object: search({
      id: 'pgsight-tx-long-idle',
      title: 'Long and idle transactions',
      description: 'Each long or idle transaction, with the code that opened it.',
      query: LONG_OR_IDLE,
      columns: [
        'event.action',
        'db.transaction.name',
        'event.duration',
        'log.origin.file.name',
        'log.origin.file.line',
        'log.origin.function',
        'service.name',
        'trace.id',
      ],
    }),
  },
];

export const transactions = dashboardFile({
  file: 'pgsight-transactions.ndjson',
  id: 'pgsight-transactions',
  title: '[pgsight] Transactions',
  description: 'Outcomes, retries and long or idle transactions of the transaction toolkit.',
  panels,
});
