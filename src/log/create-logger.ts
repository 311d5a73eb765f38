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
// A type only: the transport's option shapes, as users write them (erased at run time).
import type { OutputOptions } from '../../transports/index.js';
import { PROFILE_LEVEL, processConfig } from '../config/env.js';
import { currentLogScope, type LogScope } from '../ecs/log-context.js';
import { TRANSPORT_TARGET } from '../ecs/transport-target.js';

export type Environment = 'development' | 'production' | 'test';

export interface CreateLoggerOptions {
  /** @default from NODE_ENV: 'production', 'test', else 'development' */
  environment?: Environment;
  /** @default LOG_LEVEL, else debug (development), info (production), warn (test) */
  level?: string;
  /** `service.*` of every record. @default OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES / package.json / NODE_ENV */
  service?: { name?: string; version?: string; environment?: string };
  /** pgsight/transport `outputs` for the production profile. @default [{ type: 'stdout' }], plus Elasticsearch when PGSIGHT_ELASTICSEARCH_URL is set */
  outputs?: OutputOptions[];
  /** pgsight/transport `redact` options (added to the built-in lists). */
  redact?: { keys?: string[]; patterns?: string[]; censor?: string };
  /** pino's `name` (`log.logger`). */
  name?: string;
  /** Any other pino options (hooks.logMethod is pgsight's). */
  pino?: LoggerOptions;
}

const DEFAULT_LEVEL: Record<Environment, string> = PROFILE_LEVEL;

/** The child of `logger` bound to the scope's fields, made on the scope's first record through that logger. */
function contextChild(logger: Logger, scope: LogScope): Logger {
  if (scope.logger === logger || scope.child === logger) return scope.child as Logger;
  const known = scope.others?.get(logger);
  if (known) return known as Logger;
  const child = logger.child(scope.fields as Record<string, unknown>);
  if (scope.logger === undefined) {
    scope.logger = logger;
    scope.child = child;
  } else {
    scope.others ??= new Map();
    scope.others.set(logger, child);
    scope.others.set(child, child); // a call made on the child itself is already bound
  }
  return child;
}

/**
 * pino `hooks.logMethod`: outside a log context, the plain call; inside one, the same call on the scope's
 * child logger (fields serialized once per scope, as pino's own child bindings are). Exported for loggers
 * built by hand (and the benchmark).
 */
export function logWithContext(this: Logger, args: unknown[], method: (...a: unknown[]) => void): void {
  const scope = currentLogScope();
  method.apply(scope === undefined ? this : contextChild(this, scope), args);
}

export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const config = processConfig();
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
