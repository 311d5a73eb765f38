// Transactions as the preload sees them: spans (transaction span above its query spans, retry and
// savepoint events), metrics, and hand-written transactions (watchdog, end record, released while open).
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { useOtlpReceiver } from './support/otlp-receiver.js';
import { field, fixture, runNode } from './support/run-node.js';

const otlpReceiver = useOtlpReceiver({ beforeEach, afterEach });

describe('transactions under the preload', () => {
  it('exports the transaction span, its events and metrics, and flags hand-written transactions', async () => {
    const run = await runNode(fixture('tx-app.mjs'), {
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: otlpReceiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        PGSIGHT_TX_IDLE_MS: '100',
        PGSIGHT_LOG_LEVEL: 'debug',
      },
    });
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('done');

    const txSpan = otlpReceiver.receiver.spans.find((s) => s.name === 'db.transaction transfer');
    expect(txSpan?.attributes).toMatchObject({
      'db.system.name': 'postgresql',
      'db.transaction.isolation_level': 'serializable',
      'db.transaction.outcome': 'committed',
      'db.transaction.attempts': 2,
      'db.response.status_code': '40001',
    });
    const events = (txSpan as unknown as { events: { name: string }[] }).events.map((e) => e.name);
    expect(events).toEqual([
      'db.transaction.savepoint_rollback',
      'db.transaction.retry',
      'db.transaction.savepoint_rollback',
    ]);
    const children = otlpReceiver.receiver.spans
      .filter((s) => s.parentSpanId === txSpan?.spanId)
      .map((s) => String(s.attributes['db.query.text']));
    expect(children.filter((t) => t.includes('inside_transfer'))).toHaveLength(2);
    expect(children).toContain('BEGIN ISOLATION LEVEL SERIALIZABLE');

    const byAction = (action: string) => run.records.filter((r) => field(r, 'event.action') === action);
    expect(byAction('db.transaction.retry')).toHaveLength(2);
    const ends = byAction('db.transaction.end');
    expect(ends.map((r) => [field(r, 'db.transaction.name'), field(r, 'db.transaction.outcome')])).toEqual([
      ['transfer', 'committed'],
      ['doomed', 'retries_exhausted'],
      ['manual', 'committed'],
    ]);
    // A failure the transaction answers by running again is a warning; the last attempt's is an error.
    const failures = byAction('db.query.error').filter(
      (r) => field(r, 'db.response.status_code') === '40001',
    );
    expect(
      failures.map((r) => [
        field(r, 'log.level'),
        field(r, 'db.transaction.name'),
        field(r, 'db.transaction.attempt'),
        String(field(r, 'message')).replace(/after [\d.]+ ms/, 'after N ms'),
      ]),
    ).toEqual([
      [
        'warn',
        'transfer',
        1,
        expect.stringMatching(/^query failed \(40001\) after N ms, transaction transfer runs again: DO/),
      ],
      [
        'warn',
        'doomed',
        1,
        expect.stringMatching(/^query failed \(40001\) after N ms, transaction doomed runs again: DO/),
      ],
      ['error', undefined, undefined, expect.stringMatching(/^query failed \(40001\) after N ms: DO/)],
    ]);
    expect(field(ends[0], 'trace.id')).toBe(txSpan?.traceId);
    const idle = byAction('db.transaction.idle');
    expect(idle).toHaveLength(1);
    expect(field(idle[0], 'db.transaction.kind')).toBe('manual');
    expect(field(idle[0], 'log.origin.file.name')).toBe('test/fixtures/tx-app.mjs');
    const fixtureLines = readFileSync(fixture('tx-app.mjs'), 'utf8').split('\n');
    expect(field(idle[0], 'log.origin.file.line')).toBe(
      fixtureLines.findIndex((l) => l.includes('hand-written, left idle')) + 1,
    );
    expect(byAction('db.transaction.released_open')).toHaveLength(1);

    const metric = (name: string) => otlpReceiver.receiver.points.filter((p) => p.metric === name);
    expect(
      metric('pgsight.db.transactions').find((p) => p.attributes['db.transaction.outcome'] === 'committed')
        ?.value,
    ).toBe(1);
    expect(
      metric('pgsight.db.transactions').find(
        (p) => p.attributes['db.transaction.outcome'] === 'retries_exhausted',
      )?.value,
    ).toBe(1);
    expect(metric('pgsight.db.transaction.retries')[0]?.attributes['db.response.status_code']).toBe('40001');
    expect(metric('pgsight.db.transaction.duration')[0]?.value).toBe(1);
  });
});
