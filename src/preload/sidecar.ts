/**
 * Starts the OpenTelemetry Node SDK with pgsight's pg instrumentation plus the HTTP and pino ones, and owns
 * the process-level hooks: the "was pg really patched" check and the flush on SIGTERM / SIGINT / beforeExit.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { trace } from '@opentelemetry/api';
import type { MetricReader } from '@opentelemetry/sdk-metrics';
import { type Config, otelExportsConfigured, processConfig } from '../config/env.js';
import { createEcsLogger, type PgsightLogger } from '../ecs/ecs-logger.js';
import { setPgsightLogger } from '../ecs/pgsight-logger.js';
import { setTallySettings } from '../ecs/query-tally.js';
import { createQueryNormalizer } from '../pg/query-cache.js';
import { setWatchdogThresholds } from '../transaction/watchdog.js';
import { recordsWritten, setForensicsSettings } from './forensics.js';
import { installHttpHooks } from './http-propagation.js';
import { createManualTracker } from './manual-transactions.js';
import { EXPORT_TIMEOUT_MS, setupOpenTelemetry } from './otel-setup.js';
import { type Instrumentation, PinoInstrumentation, type SpanProcessor } from './otel-vendor.js';
import { PgsightPgInstrumentation } from './pg-instrumentation.js';
import { setPoolWatchSettings } from './pool-watch.js';
import { isPgsightWrapped, type QueryPatchState } from './query-patch.js';
import { createQueryRecorder, type QueryInstruments } from './query-recorder.js';

export interface SidecarOptions {
  /** Settings; read from the environment when omitted. */
  config?: Config;
  /** Span processors to use instead of the ones the `OTEL_*` environment asks for. */
  spanProcessors?: SpanProcessor[];
  /** Metric readers to use instead of the ones the `OTEL_*` environment asks for. */
  metricReaders?: MetricReader[];
  /** Where pgsight's records go instead of stdout / PGSIGHT_LOG_FILE. */
  logger?: PgsightLogger;
}

export interface Sidecar {
  readonly config: Config;
  readonly logger: PgsightLogger;
  /** Export everything buffered. Never rejects. */
  flush(): Promise<void>;
  /** Flush and stop the SDK. Never rejects. */
  shutdown(): Promise<void>;
}

/** How long a signal or exit waits for telemetry to flush before letting the process go. */
const FLUSH_TIMEOUT_MS = EXPORT_TIMEOUT_MS + 500;
/** How long a flush waits for slow-query records still waiting for their plan or sample. */
const RECORDS_WAIT_MS = 1000;
/** An exit flush this long ran into the export timeout: an exporter did not answer (said once on stderr). */
const SLOW_EXIT_MS = EXPORT_TIMEOUT_MS * 0.9;

let running: Promise<Sidecar> | undefined;

/**
 * HTTP server and client spans (node:http, and fetch() / undici), loaded only when telemetry is consumed:
 * otherwise pgsight's propagation hook does their part, and a start does not load their modules.
 */
async function exportingInstrumentations(): Promise<Instrumentation[]> {
  const [{ HttpInstrumentation }, { UndiciInstrumentation }] = await Promise.all([
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-undici'),
  ]);
  return [new HttpInstrumentation(), new UndiciInstrumentation()];
}

function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    promise.then(done, done);
  });
}

function flushLogger(logger: PgsightLogger): Promise<void> {
  return new Promise((resolve) => {
    try {
      logger.flush(() => resolve());
    } catch {
      resolve();
    }
  });
}

/** Start the sidecar once per process; later calls return the running one. */
export function startSidecar(options: SidecarOptions = {}): Promise<Sidecar> {
  running ??= start(options);
  return running;
}

async function start(options: SidecarOptions): Promise<Sidecar> {
  const config = options.config ?? processConfig();
  const logger = options.logger ?? createEcsLogger(config);
  let reported = false;
  const onInternalError = (error: unknown) => {
    if (reported) return;
    reported = true;
    process.stderr.write(
      `pgsight: an internal error was skipped; queries are unaffected: ${String(error)}\n`,
    );
  };

  const instruments: QueryInstruments & { wanted: boolean } = {
    wanted: options.metricReaders ? options.metricReaders.length > 0 : config.exporters.metrics,
    duration: undefined,
    slowQueries: undefined,
    forensicsSkipped: undefined,
    waitTime: undefined,
    useTime: undefined,
  };
  const normalize = createQueryNormalizer(config.queryCacheSize);
  const state: QueryPatchState = {
    recorder: createQueryRecorder(config, logger, normalize, instruments),
    normalize,
    tracer: undefined,
    manual: createManualTracker(normalize),
    sqlcommenter: config.sqlcommenter,
    onInternalError,
  };
  setPgsightLogger(logger);
  setWatchdogThresholds({ warnMs: config.txWarnMs, idleMs: config.txIdleMs, origin: config.txOrigin });
  setTallySettings({ min: config.nPlusOneMin, ignore: config.nPlusOneIgnore, normalize });
  setPoolWatchSettings(config.poolWaitMs, instruments);
  const recorder = state.recorder;
  setForensicsSettings({
    slowMs: config.slowQueryMs,
    perSecond: config.forensicsPerSecond,
    plans: { intervalMs: config.explainIntervalMs, exclude: config.explainExclude },
    normalize,
    get skipped() {
      return instruments.forensicsSkipped;
    },
    onRunning: (entry, elapsedMs, fields) => recorder.running(entry, elapsedMs, fields),
  });
  // Nothing consumes telemetry: HTTP needs context propagation only (http-propagation.ts says why).
  const propagationOnly =
    !config.otelDisabled &&
    !otelExportsConfigured(config) &&
    !options.spanProcessors &&
    !options.metricReaders?.length;
  // OTEL_SDK_DISABLED: pg is still patched (pgsight's records), nothing of OpenTelemetry is.
  const instrumentations = [
    new PgsightPgInstrumentation({ ignoreConnectSpans: !config.connectSpans }, state, instruments),
    ...(propagationOnly || config.otelDisabled ? [] : await exportingInstrumentations()),
    ...(config.otelDisabled ? [] : [new PinoInstrumentation({ disableLogSending: !config.exporters.logs })]),
  ];
  const otel = await setupOpenTelemetry(config, instrumentations, {
    spanProcessors: options.spanProcessors,
    metricReaders: options.metricReaders,
  });
  if (propagationOnly || config.nPlusOneMin > 0) installHttpHooks(propagationOnly);
  // always_off (not parent-based) never samples anything: starting no query span at all is the same, cheaper.
  if (otel.tracing && config.sampler.name !== 'always_off') state.tracer = trace.getTracer('pgsight');

  const sidecar: Sidecar = {
    config,
    logger,
    // pgsight's own records too: pino flushes its transports at exit, but not when a signal ends the process.
    // Records waiting for their forensics first (each bounded by a statement timeout; here by a second).
    flush: () =>
      withTimeout(
        withTimeout(recordsWritten(), RECORDS_WAIT_MS).then(() =>
          Promise.all([otel.forceFlush(), flushLogger(logger)]),
        ),
        FLUSH_TIMEOUT_MS + RECORDS_WAIT_MS,
      ),
    shutdown: () => withTimeout(otel.shutdown(), FLUSH_TIMEOUT_MS),
  };
  installExitHooks(sidecar);
  return sidecar;
}

/**
 * Flush on SIGTERM / SIGINT / beforeExit without changing how the app exits. A signal listener disables
 * Node's default "terminate" action, so when pgsight's is the only listener it re-raises the signal after
 * the flush, and the process ends exactly as it would have without pgsight (killed by that signal).
 */
function installExitHooks(sidecar: Sidecar): void {
  let shutDown = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void sidecar.flush().then(() => {
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      });
    });
  }
  process.on('beforeExit', () => {
    if (shutDown) return;
    shutDown = true;
    const started = performance.now();
    void sidecar.shutdown().then(() => {
      // A flush that is answered takes milliseconds; one that took about the export timeout ran into it.
      const waited = performance.now() - started;
      if (waited >= SLOW_EXIT_MS && otelExportsConfigured(sidecar.config))
        process.stderr.write(
          `pgsight: the exit waited ${(waited / 1000).toFixed(1)} s on OpenTelemetry export (OTEL_EXPORTER_OTLP_* did not answer); spans and metrics not sent by then are dropped\n`,
        );
    });
  });
}

/**
 * Warn once when pg can be loaded from the app's directory but its Client did not get pgsight's wrapper
 * (a bundled pg, or a module hook that did not run): otherwise slow queries would go silently unseen.
 */
export function checkPgPatched(cwd: string = process.cwd()): boolean | undefined {
  let pg: { Client?: { prototype?: { query?: unknown } } };
  try {
    pg = createRequire(join(cwd, 'noop.js'))('pg');
  } catch {
    return undefined; // the app does not use pg (or not from here): nothing to check
  }
  const patched = isPgsightWrapped(pg.Client?.prototype?.query);
  if (!patched) {
    process.stderr.write(
      'pgsight: WARNING: pg was loaded but its Client.prototype.query is not instrumented; slow queries will ' +
        'not be flagged. Is pg bundled into the app, or was pgsight started after pg was loaded? ' +
        'Start it first with `node --import pgsight/register app.js`.\n',
    );
  }
  return patched;
}
