/** Service overview: requests (rate, 5xx share, latency), log volume, errors. */
import { col, dashboardFile, type Panel, search, table, xy } from './kibana.ts';

/** Completion records of requestLogging() / pino-http: the ones with a response status. */
const REQUESTS = 'http.response.status_code : *';

const panels: Panel[] = [
  {
    x: 0,
    y: 0,
    w: 24,
    h: 12,
    object: xy({
      id: 'pgsight-overview-request-rate',
      title: 'Request rate',
      description: 'Completed HTTP requests per interval.',
      query: REQUESTS,
      series: 'line',
      columns: { time: col.time(), requests: col.count('Requests') },
      x: 'time',
      y: ['requests'],
    }),
  },
  {
    x: 24,
    y: 0,
    w: 24,
    h: 12,
    object: xy({
      id: 'pgsight-overview-5xx-share',
      title: '5xx share',
      description: 'Share of requests answered with a 5xx status, per interval.',
      query: REQUESTS,
      series: 'bar_percentage_stacked',
      columns: {
        time: col.time(),
        class: col.filters('Status', [
          { label: '5xx', query: 'http.response.status_code >= 500' },
          { label: 'other', query: 'http.response.status_code < 500' },
        ]),
        requests: col.count('Requests'),
      },
      x: 'time',
      y: ['requests'],
      split: 'class',
    }),
  },
  {
    x: 0,
    y: 12,
    w: 24,
    h: 12,
    object: xy({
      id: 'pgsight-overview-latency',
      title: 'Request latency p50 / p95 / p99',
      description: 'Request duration percentiles (event.duration).',
      query: REQUESTS,
      series: 'line',
      columns: {
        time: col.time(),
        p50: col.percentile('event.duration', 50, 'p50'),
        p95: col.percentile('event.duration', 95, 'p95'),
        p99: col.percentile('event.duration', 99, 'p99'),
      },
      x: 'time',
      y: ['p50', 'p95', 'p99'],
    }),
  },
  {
    x: 24,
    y: 12,
    w: 24,
    h: 12,
    object: xy({
      id: 'pgsight-overview-log-levels',
      title: 'Log volume by level',
      description: 'Records per interval, by log.level.',
      query: '',
      series: 'bar_stacked',
      columns: {
        time: col.time(),
        level: col.terms('log.level', 'Level', 'records', 6),
        records: col.count('Records'),
      },
      x: 'time',
      y: ['records'],
      split: 'level',
    }),
  },
  {
    x: 0,
    y: 24,
    w: 48,
    h: 12,
    object: xy({
      id: 'pgsight-overview-errors-by-type',
      title: 'Errors by error.type',
      description: 'Records carrying an error, per interval, by its type.',
      query: 'error.type : *',
      series: 'bar_stacked',
      columns: {
        time: col.time(),
        type: col.terms('error.type', 'Error type', 'errors', 10),
        errors: col.distinct('Errors'),
      },
      x: 'time',
      y: ['errors'],
      split: 'type',
    }),
  },
  {
    x: 0,
    y: 36,
    w: 24,
    h: 15,
    object: table({
      id: 'pgsight-overview-n-plus-one-by-endpoint',
      title: 'N+1 by endpoint',
      description:
        'db.query.n_plus_one records: statements run PGSIGHT_N_PLUS_ONE_MIN times or more in one request, by path and statement, with the call site.',
      query: 'event.action : "db.query.n_plus_one"',
      columns: {
        path: col.terms('url.path', 'Endpoint', 'requests', 10),
        statement: col.terms('db.query.text.keyword', 'Statement', 'requests', 3),
        origin: col.terms('log.origin.file.name', 'Call site', 'requests', 1),
        requests: col.count('Requests'),
        repetitions: col.metric('max', 'db.query.repetitions', 'Max repetitions'),
        time: col.metric('sum', 'event.duration', 'Time in them'),
      },
    }),
  },
  {
    x: 24,
    y: 36,
    w: 24,
    h: 15,
    object: xy({
      id: 'pgsight-overview-pool-wait',
      title: 'Pool wait by pool',
      description:
        'db.pool.wait records: checkouts that waited PGSIGHT_POOL_WAIT_MS or more, max wait per interval and pool.',
      query: 'event.action : "db.pool.wait"',
      series: 'line',
      columns: {
        time: col.time(),
        pool: col.terms('db.client.connection.pool.name', 'Pool', 'wait', 5),
        wait: col.metric('max', 'db.client.connection.wait_ms', 'Max wait (ms)'),
      },
      x: 'time',
      y: ['wait'],
      split: 'pool',
    }),
  },
  {
    x: 0,
    y: 51,
    w: 48,
    h: 15,
    object: search({
      id: 'pgsight-overview-recent-errors',
      title: 'Recent errors',
      description: 'Error and fatal records, newest first, with the trace to open.',
      query: 'log.level : ("error" or "fatal")',
      columns: ['service.name', 'error.type', 'message', 'trace.id'],
    }),
  },
];

export const serviceOverview = dashboardFile({
  file: 'pgsight-service-overview.ndjson',
  id: 'pgsight-service-overview',
  title: '[pgsight] Service overview',
  description: 'Requests, latency, log volume and errors of the services pgsight observes.',
  panels,
});
