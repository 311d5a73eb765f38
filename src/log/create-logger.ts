/**
 * `createLogger(options)`: a pino logger with pgsight's profiles.
 *
 * | environment   | output                                                    | default level |
 * |---------------|-----------------------------------------------------------|---------------|
 * | development   | readable, colourised console lines (pino-pretty)          | debug         |
 * | production    | ECS JSON through pgsight/transport, to its outputs        | info          |
 * | test          | ECS JSON on stdout, quiet                                 | warn          |
 *
 * Every profile writes through pgsight/transport, so redaction runs in every profile: a secret must not reach
 * a developer's terminal either. Records logged inside `withLogContext` carry its fields: the log call is
 * re-targeted (pino's logMethod hook) to a child logger of the context, created once per context and logger,
 * so the fields are serialized once, as pino's own child bindings are.
 */
import pino, { type Logger, type LoggerOptions } from 'pino';
import { loadConfig } from '../config.js';
import { currentLogContext, type LogFields } from './context.js';
import { TRANSPORT_TARGET } from './transport-target.js';

export type Environment = 'development' | 'production' | 'test';

export interface CreateLoggerOptions {
  /** @default from NODE_ENV: 'production', 'test', else 'development' */
  environment?: Environment;
  /** @default LOG_LEVEL, else debug (development), info (production), warn (test) */
  level?: string;
  /** `service.*` of every record. @default OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES / package.json / NODE_ENV */
  service?: { name?: string; version?: string; environment?: string };
  /** pgsight/transport `outputs` for the production profile. @default [{ type: 'stdout' }], plus Elasticsearch when PGSIGHT_ELASTICSEARCH_URL is set */
  outputs?: Record<string, unknown>[];
  /** pgsight/transport `redact` options (added to the built-in lists). */
  redact?: { keys?: string[]; patterns?: string[]; censor?: string };
  /** pino's `name` (`log.logger`). */
  name?: string;
  /** Any other pino options (hooks.logMethod is pgsight's). */
  pino?: LoggerOptions;
}

const DEFAULT_LEVEL: Record<Environment, string> = { development: 'debug', production: 'info', test: 'warn' };

/** Children per context object and parent logger: created on the first record of a context. */
const children = new WeakMap<LogFields, WeakMap<Logger, Logger>>();

function contextChild(logger: Logger, context: LogFields): Logger {
  let byLogger = children.get(context);
  if (!byLogger) {
    byLogger = new WeakMap();
    children.set(context, byLogger);
  }
  let child = byLogger.get(logger);
  if (!child) {
    child = logger.child(context as Record<string, unknown>);
    byLogger.set(logger, child);
    byLogger.set(child, child); // a call made on the child itself is already bound
  }
  return child;
}

/**
 * pino `hooks.logMethod`: outside a log context, the plain call; inside one, the same call on the context's
 * child logger. Exported for loggers built by hand (and the benchmark).
 */
export function logWithContext(this: Logger, args: unknown[], method: (...a: unknown[]) => void): void {
  const context = currentLogContext();
  method.apply(context === undefined ? this : contextChild(this, context), args);
}

export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const config = loadConfig();
  const environment: Environment =
    options.environment ??
    (config.nodeEnv === 'production' ? 'production' : config.nodeEnv === 'test' ? 'test' : 'development');
  const service = {
    ...config.service,
    ...options.service,
    environment: options.service?.environment ?? config.service.environment ?? environment,
  };
  const outputs =
    environment === 'development'
      ? [{ type: 'pretty' }]
      : (options.outputs ?? [
          { type: 'stdout' },
          ...(config.elasticsearchUrl ? [{ type: 'elasticsearch', node: config.elasticsearchUrl }] : []),
        ]);
  const transport = pino.transport({
    target: TRANSPORT_TARGET,
    options: {
      service,
      outputs,
      ...(options.redact ? { redact: options.redact } : {}),
      summary: 'on-trouble',
    },
  });
  const hooks = { ...options.pino?.hooks, logMethod: logWithContext };
  return pino(
    {
      ...options.pino,
      level: options.level ?? config.logLevelOverride ?? DEFAULT_LEVEL[environment],
      ...(options.name ? { name: options.name } : {}),
      hooks,
    },
    transport,
  );
}
