import { describe, expect, it } from 'vitest';
import { defaults, loadConfig } from '../src/config/env.js';
import { PgsightError } from '../src/errors.js';

describe('loadConfig', () => {
  it('uses the documented defaults when nothing is set', () => {
    const config = loadConfig({ env: {} });
    expect(config.slowQueryMs).toBe(500);
    expect(config.logParams).toBe(false);
    expect(config.disabled).toBe(false);
    expect(config.logFile).toBeUndefined();
    expect(config.sampler).toEqual({ name: 'parentbased_always_on', ratio: 1 });
    expect(config.exporters).toEqual({ traces: false, metrics: false, logs: false });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads each variable', () => {
    const config = loadConfig({
      env: {
        PGSIGHT_SLOW_QUERY_MS: '0',
        PGSIGHT_LOG_PARAMS: 'true',
        PGSIGHT_DISABLED: 'yes',
        PGSIGHT_LOG_FILE: '/tmp/x.ndjson',
        PGSIGHT_LOG_LEVEL: 'DEBUG',
        OTEL_TRACES_SAMPLER: 'traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
        OTEL_SERVICE_NAME: 'ledger',
        OTEL_RESOURCE_ATTRIBUTES: 'service.version=1.2.3,deployment.environment.name=prod%20eu',
      },
    });
    expect(config).toMatchObject({
      slowQueryMs: 0,
      logParams: true,
      disabled: true,
      logFile: '/tmp/x.ndjson',
      logLevel: 'debug',
      sampler: { name: 'traceidratio', ratio: 0.25 },
      exporters: { traces: true, metrics: true, logs: false },
      service: { name: 'ledger', version: '1.2.3', environment: 'prod eu' },
    });
  });

  it('explicit overrides win over the environment', () => {
    expect(
      loadConfig({ env: { PGSIGHT_SLOW_QUERY_MS: '10' }, overrides: { slowQueryMs: 20 } }).slowQueryMs,
    ).toBe(20);
  });

  it('reports a bad value with the variable, the value and the value used instead, then uses the default', () => {
    const problems: string[] = [];
    const config = loadConfig({
      env: { PGSIGHT_SLOW_QUERY_MS: 'fast', PGSIGHT_LOG_PARAMS: 'maybe', PGSIGHT_LOG_LEVEL: 'loud' },
      onProblem: (p) => problems.push(`${p.variable}=${p.value} -> ${p.used}`),
    });
    expect(config.slowQueryMs).toBe(defaults.slowQueryMs);
    expect(config.logParams).toBe(false);
    expect(problems).toEqual([
      'PGSIGHT_SLOW_QUERY_MS=fast -> 500',
      'PGSIGHT_LOG_PARAMS=maybe -> false',
      'PGSIGHT_LOG_LEVEL=loud -> "info"',
    ]);
  });

  it('rejects negative and fractional thresholds and out-of-range ratios', () => {
    const problems: string[] = [];
    loadConfig({
      env: {
        PGSIGHT_SLOW_QUERY_MS: '-1',
        PGSIGHT_QUERY_CACHE_SIZE: '1.5',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '2',
      },
      onProblem: (p) => problems.push(p.variable),
    });
    expect(problems).toEqual([
      'PGSIGHT_SLOW_QUERY_MS',
      'PGSIGHT_QUERY_CACHE_SIZE',
      'OTEL_TRACES_SAMPLER_ARG',
    ]);
  });

  it('strict mode throws one PgsightError listing every bad variable at once', () => {
    let thrown: unknown;
    try {
      loadConfig({
        strict: true,
        env: { PGSIGHT_SLOW_QUERY_MS: 'x', PGSIGHT_DISABLED: 'perhaps', OTEL_TRACES_SAMPLER: 'sometimes' },
      });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(PgsightError);
    const error = thrown as PgsightError;
    expect(error.code).toBe('PGSIGHT_ERR_CONFIG_INVALID');
    expect(error.message).toContain('PGSIGHT_SLOW_QUERY_MS="x"');
    expect(error.message).toContain('PGSIGHT_DISABLED="perhaps"');
    expect(error.message).toContain('OTEL_TRACES_SAMPLER="sometimes"');
    expect(error.details).toHaveLength(3);
  });
});
