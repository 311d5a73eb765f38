/**
 * The one module that reads `process.env`. Explicit option > environment variable > default.
 * A bad value never throws by default: it is reported once (variable, bad value, value used instead)
 * and the default is used. `loadConfig({ strict: true })` throws one PgsightError listing every bad value.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { PgsightError } from '../errors.js';
import {
  boolean,
  httpUrl,
  logLevel,
  type Parser,
  pattern,
  type TxOrigin,
  text,
  txOrigin,
  wholeNumber,
} from './parsers.js';

export type { TxOrigin } from './parsers.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  /** `PGSIGHT_DISABLED`: the preload does nothing at all. @default false */
  readonly disabled: boolean;
  /**
   * `OTEL_SDK_DISABLED` (OpenTelemetry's standard variable): no OpenTelemetry at all (no spans, metrics,
   * trace context or `traceparent`); pgsight's own records, which are logs, go on. @default false
   */
  readonly otelDisabled: boolean;
  /** `PGSIGHT_SLOW_QUERY_MS`: a query taking at least this many milliseconds is flagged; 0 flags every query. @default 500 */
  readonly slowQueryMs: number;
  /** `PGSIGHT_LOG_PARAMS`: include bind parameter values in query records. Costs: values may hold personal data. @default false */
  readonly logParams: boolean;
  /** `PGSIGHT_LOG_FILE`: append pgsight's records to this file instead of stdout. @default undefined (stdout) */
  readonly logFile: string | undefined;
  /** `PGSIGHT_ELASTICSEARCH_URL`: pgsight's own records are also shipped to this Elasticsearch (data stream `logs-pgsight.<service>-default`). @default undefined */
  readonly elasticsearchUrl: string | undefined;
  /** `PGSIGHT_LOG_LEVEL`: the level of pgsight's own logger. @default 'info' */
  readonly logLevel: LogLevel;
  /** `PGSIGHT_QUERY_CACHE_SIZE`: distinct statement texts whose normalized form is cached (entries). @default 1000 */
  readonly queryCacheSize: number;
  /** `PGSIGHT_CONNECT_SPANS`: emit `pg.connect` / `pg-pool.connect` spans. Costs one span per pool checkout. @default false */
  readonly connectSpans: boolean;
  /** `PGSIGHT_TX_WARN_MS`: a transaction open longer than this (ms) is logged once as `db.transaction.long`; 0 turns it off. @default 5000 */
  readonly txWarnMs: number;
  /** `PGSIGHT_TX_IDLE_MS`: a transaction with no query in flight for this long (ms) is logged once as `db.transaction.idle`; 0 turns it off. @default 1000 */
  readonly txIdleMs: number;
  /** `PGSIGHT_TX_ORIGIN`: how the watchdog learns where a transaction was opened. `cached`: the call site is captured for the first uses of each transaction function (by source text), then re-checked every 256th use; a function seen opened from two places is captured every time from then on. `exact`: captured on every transaction (3-65 µs each). @default 'cached' */
  readonly txOrigin: TxOrigin;
  /** `PGSIGHT_N_PLUS_ONE_MIN`: a statement (by fingerprint) run at least this many times in one request or one `transaction()` is logged once, when the scope ends, as `db.query.n_plus_one`; 0 turns it off. @default 10 */
  readonly nPlusOneMin: number;
  /** `PGSIGHT_N_PLUS_ONE_IGNORE`: statements whose normalized text matches this regular expression are never reported as N+1. @default undefined */
  readonly nPlusOneIgnore: RegExp | undefined;
  /** `PGSIGHT_POOL_WAIT_MS`: a pool checkout that waited at least this long (ms) is logged as `db.pool.wait` (at most one record per pool per second); 0 turns the records off (the wait-time histogram stays). @default 100 */
  readonly poolWaitMs: number;
  /** `PGSIGHT_FORENSICS_PER_S`: a query still running at PGSIGHT_SLOW_QUERY_MS gets its server-side wait and blockers sampled (`pg_stat_activity`, `pg_blocking_pids`) on pgsight's own connection, at most this many samples per second; 0 turns sampling off. @default 10 */
  readonly forensicsPerSecond: number;
  /** `PGSIGHT_EXPLAIN_INTERVAL_MS`: a slow SELECT / INSERT / UPDATE / DELETE gets its generic plan (`EXPLAIN`, never ANALYZE) on pgsight's own connection, at most once per fingerprint per this many ms; 0 turns plans off. @default 600000 */
  readonly explainIntervalMs: number;
  /** `PGSIGHT_EXPLAIN_EXCLUDE`: statements whose normalized text matches this regular expression are never explained. @default undefined */
  readonly explainExclude: RegExp | undefined;
  /** `PGSIGHT_SQLCOMMENTER`: append `/*traceparent='...'*\/` (sqlcommenter) to the statements of sampled query spans, so the server's views and logs show the trace. Never on named prepared statements or statements ending in a comment. @default false */
  readonly sqlcommenter: boolean;
  /** `LOG_LEVEL`: the level of loggers made by `createLogger`. @default per environment (debug / info / warn) */
  readonly logLevelOverride: LogLevel | undefined;
  /** `NODE_ENV`: picks `createLogger`'s profile. @default undefined (development) */
  readonly nodeEnv: string | undefined;
  /** `DATABASE_URL`: where the demo, tests, benchmarks and `pgsight/testing` connect. @default undefined (libpq's `PG*` variables when set, else `postgres://postgres@127.0.0.1:5432/test`; the tests and the demo start an embedded server instead) */
  readonly databaseUrl: string | undefined;
  /**
   * Credentials for `pgsight setup`, from the environment rather than the command line (where `ps` shows
   * them): `ELASTICSEARCH_API_KEY`, or `ELASTICSEARCH_USERNAME` and `ELASTICSEARCH_PASSWORD`; `KIBANA_API_KEY`,
   * `KIBANA_USERNAME`, `KIBANA_PASSWORD` for Kibana (default: the Elasticsearch ones).
   */
  readonly setupCredentials: Readonly<Record<'elasticsearch' | 'kibana', SetupCredentials>>;
  /** Which of libpq's connection variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, ...) are set: pg reads them itself. */
  readonly libpqVariables: readonly string[];
  /** `service.*` of every record: `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `NODE_ENV`, the app's package.json. */
  readonly service: ServiceInfo;
  /** Which OpenTelemetry exporters the environment asks for. */
  readonly exporters: ExporterChoice;
  /** `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`, as the OTel SDK spec defines them. @default parentbased_always_on */
  readonly sampler: SamplerChoice;
}

export interface SetupCredentials {
  readonly apiKey?: string | undefined;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
}

export interface SamplerChoice {
  readonly name:
    | 'always_on'
    | 'always_off'
    | 'traceidratio'
    | 'parentbased_always_on'
    | 'parentbased_always_off'
    | 'parentbased_traceidratio';
  /** The ratio for the `traceidratio` samplers, 0 to 1. @default 1 */
  readonly ratio: number;
}

export interface ServiceInfo {
  readonly name: string;
  readonly version: string | undefined;
  readonly environment: string | undefined;
}

/**
 * The OpenTelemetry SDK defaults every signal to OTLP on localhost, which prints connection errors in an app
 * with no collector. pgsight exports a signal only when the environment names an exporter or an endpoint.
 */
export interface ExporterChoice {
  readonly traces: boolean;
  readonly metrics: boolean;
  readonly logs: boolean;
}

export interface ConfigProblem {
  readonly variable: string;
  readonly value: string;
  readonly expected: string;
  readonly used: string;
}

export interface LoadConfigOptions {
  /** Throw a PgsightError (PGSIGHT_ERR_CONFIG_INVALID) listing every invalid variable. @default false */
  strict?: boolean;
  /** The environment to read. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Explicit values; they win over the environment. */
  overrides?: Partial<Config>;
  /** Where non-strict problems are reported. @default one line per problem on stderr */
  onProblem?: (problem: ConfigProblem) => void;
}

export const defaults: Config = Object.freeze({
  disabled: false,
  otelDisabled: false,
  slowQueryMs: 500,
  logParams: false,
  logFile: undefined,
  elasticsearchUrl: undefined,
  logLevel: 'info',
  queryCacheSize: 1000,
  connectSpans: false,
  txWarnMs: 5000,
  txIdleMs: 1000,
  txOrigin: 'cached',
  nPlusOneMin: 10,
  nPlusOneIgnore: undefined,
  poolWaitMs: 100,
  forensicsPerSecond: 10,
  explainIntervalMs: 600_000,
  explainExclude: undefined,
  sqlcommenter: false,
  logLevelOverride: undefined,
  nodeEnv: undefined,
  databaseUrl: undefined,
  libpqVariables: Object.freeze([]),
  setupCredentials: Object.freeze({ elasticsearch: {}, kibana: {} }),
  service: Object.freeze({ name: 'unknown_service:node', version: undefined, environment: undefined }),
  exporters: Object.freeze({ traces: false, metrics: false, logs: false }),
  sampler: Object.freeze({ name: 'parentbased_always_on', ratio: 1 }),
});

/** createLogger's level per profile when LOG_LEVEL does not set one (log/create-logger.ts uses it too). */
export const PROFILE_LEVEL = { development: 'debug', production: 'info', test: 'warn' } as const;

/** Which variable feeds which setting, and how it is parsed. */
const VARIABLES: {
  [K in Exclude<keyof Config, 'service' | 'exporters' | 'sampler' | 'libpqVariables' | 'setupCredentials'>]: [
    variable: string,
    parser: Parser<NonNullable<Config[K]>>,
  ];
} = {
  disabled: ['PGSIGHT_DISABLED', boolean],
  otelDisabled: ['OTEL_SDK_DISABLED', boolean],
  slowQueryMs: ['PGSIGHT_SLOW_QUERY_MS', wholeNumber(0, 86_400_000)],
  logParams: ['PGSIGHT_LOG_PARAMS', boolean],
  logFile: ['PGSIGHT_LOG_FILE', text],
  elasticsearchUrl: ['PGSIGHT_ELASTICSEARCH_URL', httpUrl],
  logLevel: ['PGSIGHT_LOG_LEVEL', logLevel],
  queryCacheSize: ['PGSIGHT_QUERY_CACHE_SIZE', wholeNumber(0, 1_000_000)],
  connectSpans: ['PGSIGHT_CONNECT_SPANS', boolean],
  txWarnMs: ['PGSIGHT_TX_WARN_MS', wholeNumber(0, 86_400_000)],
  txIdleMs: ['PGSIGHT_TX_IDLE_MS', wholeNumber(0, 86_400_000)],
  txOrigin: ['PGSIGHT_TX_ORIGIN', txOrigin],
  nPlusOneMin: ['PGSIGHT_N_PLUS_ONE_MIN', wholeNumber(0, 1_000_000)],
  nPlusOneIgnore: ['PGSIGHT_N_PLUS_ONE_IGNORE', pattern],
  poolWaitMs: ['PGSIGHT_POOL_WAIT_MS', wholeNumber(0, 86_400_000)],
  forensicsPerSecond: ['PGSIGHT_FORENSICS_PER_S', wholeNumber(0, 10_000)],
  explainIntervalMs: ['PGSIGHT_EXPLAIN_INTERVAL_MS', wholeNumber(0, 86_400_000)],
  explainExclude: ['PGSIGHT_EXPLAIN_EXCLUDE', pattern],
  sqlcommenter: ['PGSIGHT_SQLCOMMENTER', boolean],
  logLevelOverride: ['LOG_LEVEL', logLevel],
  nodeEnv: ['NODE_ENV', text],
  databaseUrl: ['DATABASE_URL', text],
};

/** Every variable pgsight reads, for the README check and for `--help` style listings. */
const SETUP_VARIABLES = {
  elasticsearch: ['ELASTICSEARCH_API_KEY', 'ELASTICSEARCH_USERNAME', 'ELASTICSEARCH_PASSWORD'],
  kibana: ['KIBANA_API_KEY', 'KIBANA_USERNAME', 'KIBANA_PASSWORD'],
} as const;

export const configVariables: readonly string[] = [
  ...Object.values(VARIABLES).map(([variable]) => variable),
  ...SETUP_VARIABLES.elasticsearch,
  ...SETUP_VARIABLES.kibana,
];

function setupCredentialsFrom(env: NodeJS.ProcessEnv): Config['setupCredentials'] {
  const read = ([apiKey, username, password]: readonly [string, string, string]): SetupCredentials => ({
    apiKey: env[apiKey] || undefined,
    username: env[username] || undefined,
    password: env[password] || undefined,
  });
  const elasticsearch = read(SETUP_VARIABLES.elasticsearch);
  const kibana = read(SETUP_VARIABLES.kibana);
  const anyKibana = kibana.apiKey || kibana.username || kibana.password;
  return Object.freeze({ elasticsearch, kibana: anyKibana ? kibana : elasticsearch });
}

function reportToStderr(problem: ConfigProblem): void {
  process.stderr.write(
    `pgsight: ${problem.variable}=${JSON.stringify(problem.value)} is invalid (expected ${problem.expected}); using ${problem.used}\n`,
  );
}

let processWide: Config | undefined;

/**
 * The process's configuration: the environment read once, on first use, and shared by every module (the
 * preload, the loggers, the watchdog, the testing helpers, the transport). Problems are reported once, on
 * stderr, by the main thread; a worker thread (pino's transport) reads the same variables silently.
 */
/** True when the environment names an OpenTelemetry exporter for any signal. */
export function otelExportsConfigured(config: Config): boolean {
  return config.exporters.traces || config.exporters.metrics || config.exporters.logs;
}

export function processConfig(): Config {
  processWide ??= loadConfig(isMainThread ? {} : { onProblem: () => {} });
  return processWide;
}

export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const problems: ConfigProblem[] = [];
  const result: Record<string, unknown> = { ...defaults };
  for (const key of Object.keys(VARIABLES) as (keyof typeof VARIABLES)[]) {
    const [variable, parser] = VARIABLES[key];
    const raw = env[variable];
    if (raw === undefined || raw.trim() === '') continue;
    const value = parser.parse(raw);
    if (value === undefined) {
      const fallback = defaults[key];
      problems.push({
        variable,
        value: raw,
        expected: parser.expected,
        used: fallback === undefined ? 'none' : JSON.stringify(fallback),
      });
    } else {
      result[key] = value;
    }
  }
  // LOG_LEVEL has no single default: a bad one leaves createLogger's profile level, which NODE_ENV picks.
  problems.forEach((problem, i) => {
    if (problem.variable !== 'LOG_LEVEL') return;
    const profile =
      result.nodeEnv === 'production' ? 'production' : result.nodeEnv === 'test' ? 'test' : 'development';
    problems[i] = {
      ...problem,
      used: `${JSON.stringify(PROFILE_LEVEL[profile])} (the ${profile} profile's level)`,
    };
  });
  result.libpqVariables = Object.freeze(LIBPQ_VARIABLES.filter((name) => env[name]?.trim()));
  result.setupCredentials = setupCredentialsFrom(env);
  result.service = serviceFrom(env);
  result.exporters = exportersFrom(env);
  result.sampler = samplerFrom(env, problems);
  if (options.overrides) {
    for (const [key, value] of Object.entries(options.overrides))
      if (value !== undefined) result[key] = value;
  }
  if (problems.length > 0) {
    if (options.strict) {
      const lines = problems.map((p) => `${p.variable}=${JSON.stringify(p.value)} (expected ${p.expected})`);
      throw new PgsightError('PGSIGHT_ERR_CONFIG_INVALID', `invalid configuration: ${lines.join('; ')}`, {
        details: problems,
      });
    }
    for (const problem of problems) (options.onProblem ?? reportToStderr)(problem);
  }
  return Object.freeze(result) as unknown as Config;
}

/** The libpq variables node-postgres reads when a connection has no connection string (pg's connection-parameters.js). */
const LIBPQ_VARIABLES = ['PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE', 'PGSSLMODE', 'PGAPPNAME'];

/** `OTEL_RESOURCE_ATTRIBUTES` is `key=value,key=value` with percent-encoded values (OTel resource SDK spec). */
function resourceAttributes(env: NodeJS.ProcessEnv): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const pair of (env.OTEL_RESOURCE_ATTRIBUTES ?? '').split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    try {
      attributes.set(pair.slice(0, eq).trim(), decodeURIComponent(pair.slice(eq + 1).trim()));
    } catch {
      // A malformed escape leaves that one attribute out, as the OTel SDK does.
    }
  }
  return attributes;
}

function appPackage(): { name?: string; version?: string } {
  try {
    const raw = readFileSync(join(process.cwd(), 'package.json'), 'utf8');
    const parsed = JSON.parse(raw) as { name?: unknown; version?: unknown };
    return {
      ...(typeof parsed.name === 'string' ? { name: parsed.name } : {}),
      ...(typeof parsed.version === 'string' ? { version: parsed.version } : {}),
    };
  } catch {
    return {};
  }
}

function serviceFrom(env: NodeJS.ProcessEnv): ServiceInfo {
  const resource = resourceAttributes(env);
  const pkg = appPackage();
  return Object.freeze({
    name: env.OTEL_SERVICE_NAME?.trim() || resource.get('service.name') || pkg.name || defaults.service.name,
    version: resource.get('service.version') || pkg.version,
    environment:
      resource.get('deployment.environment.name') ||
      resource.get('deployment.environment') ||
      env.NODE_ENV?.trim() ||
      undefined,
  });
}

function exportersFrom(env: NodeJS.ProcessEnv): ExporterChoice {
  const endpoint = Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
  const named = (variable: string) => Boolean(env[variable]?.trim());
  return Object.freeze({
    traces: named('OTEL_TRACES_EXPORTER') || endpoint || named('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'),
    metrics: named('OTEL_METRICS_EXPORTER') || endpoint || named('OTEL_EXPORTER_OTLP_METRICS_ENDPOINT'),
    logs: named('OTEL_LOGS_EXPORTER') || named('OTEL_EXPORTER_OTLP_LOGS_ENDPOINT'),
  });
}

const SAMPLERS: readonly SamplerChoice['name'][] = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
];

function samplerFrom(env: NodeJS.ProcessEnv, problems: ConfigProblem[]): SamplerChoice {
  const raw = env.OTEL_TRACES_SAMPLER?.trim();
  let name = defaults.sampler.name;
  if (raw) {
    const found = SAMPLERS.find((s) => s === raw.toLowerCase());
    if (found) name = found;
    else
      problems.push({
        variable: 'OTEL_TRACES_SAMPLER',
        value: raw,
        expected: SAMPLERS.join(', '),
        used: name,
      });
  }
  let ratio = 1;
  const rawRatio = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  if (rawRatio && name.endsWith('traceidratio')) {
    const n = Number(rawRatio);
    if (Number.isFinite(n) && n >= 0 && n <= 1) ratio = n;
    else
      problems.push({
        variable: 'OTEL_TRACES_SAMPLER_ARG',
        value: rawRatio,
        expected: 'a number from 0 to 1',
        used: '1',
      });
  }
  return Object.freeze({ name, ratio });
}
