/**
 * pgsight's own logger: pino writing ECS JSON lines (https://www.elastic.co/guide/en/ecs-logging/overview/current/intro.html)
 * through pgsight/transport (redaction, ECS), to stdout or PGSIGHT_LOG_FILE, and to Elasticsearch when
 * PGSIGHT_ELASTICSEARCH_URL is set. pino flushes the transport when the app exits.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { isatty } from 'node:tty';
import pino, { type Logger } from 'pino';
import type { Config } from '../config/env.js';
import { currentLogContext } from './log-context.js';
import { TRANSPORT_TARGET } from './transport-target.js';
import { ECS_VERSION } from './version.js';

export type PgsightLogger = Logger;

export function createEcsLogger(config: Config, destination?: pino.DestinationStream): PgsightLogger {
  const { service } = config;
  return pino(
    {
      level: config.logLevel,
      messageKey: 'message',
      // ECS wants `@timestamp` as the first key. pino writes the level before the time, so the level is left
      // out of that slot (an empty object) and added as `log.level` by the mixin instead.
      formatters: { level: () => ({}) },
      timestamp: () => `"@timestamp":"${new Date().toISOString()}"`,
      // The log context (request id, trace id of the request...) first, so the record's own fields win.
      mixin: (_fields, level, logger) => ({
        ...currentLogContext(),
        'log.level': logger.levels.labels[level] ?? String(level),
        log: { logger: 'pgsight' },
      }),
      // A record's own `log.*` (log.origin of a transaction record) joins `log.logger` in one object.
      mixinMergeStrategy: (record: object, mixin: object) => {
        const log = (record as { log?: unknown }).log;
        const merged = Object.assign(mixin, record) as Record<string, unknown>;
        if (log && typeof log === 'object') merged.log = { logger: 'pgsight', ...log };
        return merged;
      },
      base: {
        'ecs.version': ECS_VERSION,
        service: {
          name: service.name,
          ...(service.version ? { version: service.version } : {}),
          ...(service.environment ? { environment: service.environment } : {}),
        },
        process: { pid: process.pid },
        host: { hostname: hostname() },
      },
    },
    destination ?? lazyTransport(config),
  );
}

/**
 * The transport's worker thread is started by the first record, not at start-up: pgsight writes only for
 * slow or failed queries and transaction trouble, and an idle worker in every instrumented process costs
 * measurably (bench/pg.mjs, variant b).
 */
function lazyTransport(config: Config): pino.DestinationStream {
  let stream: (pino.DestinationStream & { flush?: (cb: (err?: Error) => void) => void }) | undefined;
  return {
    write(line: string) {
      stream ??= pino.transport({ target: TRANSPORT_TARGET, options: transportOptions(config) });
      stream.write(line);
    },
    flush(cb: (err?: Error) => void) {
      if (stream?.flush) stream.flush(cb);
      else cb();
    },
  } as pino.DestinationStream;
}

/**
 * Whether pgsight can append to `path` (creating its directory): checked once, before the transport starts,
 * so that a PGSIGHT_LOG_FILE naming a directory or an uncreatable path is said, and the records go to stdout
 * instead of being lost in the worker.
 */
function writableFile(path: string): boolean {
  try {
    mkdirSync(dirname(path), { recursive: true });
    closeSync(openSync(path, 'a'));
    return true;
  } catch (error) {
    process.stderr.write(
      `pgsight: PGSIGHT_LOG_FILE=${JSON.stringify(path)} cannot be written (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); pgsight's records go to stdout\n`,
    );
    return false;
  }
}

/**
 * A developer's terminal: the development profile (NODE_ENV neither production nor test) writing to a TTY.
 * pgsight's records then read like the app's pretty lines; piped or in production they stay ECS JSON.
 */
function developmentTerminal(config: Config): boolean {
  return config.nodeEnv !== 'production' && config.nodeEnv !== 'test' && isatty(1);
}

function transportOptions(config: Config) {
  const outputs: Record<string, unknown>[] = [
    config.logFile && writableFile(config.logFile)
      ? { type: 'file', path: config.logFile }
      : developmentTerminal(config)
        ? { type: 'pretty' }
        : { type: 'stdout' },
  ];
  if (config.elasticsearchUrl) outputs.push({ type: 'elasticsearch', node: config.elasticsearchUrl });
  // Created lazily, outside pino()'s constructor, so pino never sends its configuration: do not wait for it
  // (this logger's records carry `log.level` and `message` themselves).
  return {
    service: { ...config.service },
    outputs,
    statusIntervalMs: 0,
    // An exit waits at most this long for a destination that does not answer (the preload's flush bound).
    closeTimeoutMs: 2000,
    summary: 'on-trouble',
    expectPinoConfig: false,
  };
}
