// A local OTLP/HTTP JSON receiver (the collector's /v1/traces and /v1/metrics endpoints), so tests can read
// the spans and metrics a child process really exports. Run children with OTEL_EXPORTER_OTLP_PROTOCOL=http/json.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

type AnyValue = {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
};
type KeyValue = { key: string; value: AnyValue };

export interface ReceivedSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  kind: number;
  status?: { code?: number; message?: string };
  attributes: Record<string, unknown>;
  scope: string;
}

export interface ReceivedPoint {
  metric: string;
  attributes: Record<string, unknown>;
  /** A sum's or gauge's value; a histogram's count. */
  value: number;
  /** A histogram's sum, bucket bounds and counts per bucket. */
  sum?: number;
  bounds?: number[];
  buckets?: number[];
}

const plain = (value: AnyValue): unknown =>
  value.stringValue ??
  (value.intValue !== undefined ? Number(value.intValue) : (value.boolValue ?? value.doubleValue));
const attributesOf = (list: KeyValue[] = []) =>
  Object.fromEntries(list.map((kv) => [kv.key, plain(kv.value)]));

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly points: ReceivedPoint[] = [];
  private server: Server | undefined;

  async start(): Promise<string> {
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (chunk: string) => {
        body += chunk;
      });
      req.on('end', () => {
        try {
          const payload = JSON.parse(body || '{}');
          if (req.url === '/v1/traces') this.addSpans(payload);
          if (req.url === '/v1/metrics') this.addMetrics(payload);
        } catch {
          // A body that is not JSON is not for this receiver.
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  // biome-ignore lint/suspicious/noExplicitAny: OTLP JSON payloads, read defensively
  private addSpans(payload: any): void {
    for (const rs of payload.resourceSpans ?? [])
      for (const ss of rs.scopeSpans ?? [])
        for (const span of ss.spans ?? [])
          this.spans.push({
            ...span,
            attributes: attributesOf(span.attributes),
            scope: ss.scope?.name ?? '',
          });
  }

  // biome-ignore lint/suspicious/noExplicitAny: OTLP JSON payloads, read defensively
  private addMetrics(payload: any): void {
    for (const rm of payload.resourceMetrics ?? [])
      for (const sm of rm.scopeMetrics ?? [])
        for (const metric of sm.metrics ?? []) {
          const points =
            metric.histogram?.dataPoints ?? metric.sum?.dataPoints ?? metric.gauge?.dataPoints ?? [];
          for (const p of points)
            this.points.push({
              metric: metric.name,
              attributes: attributesOf(p.attributes),
              value: Number(p.count ?? p.asInt ?? p.asDouble ?? 0),
              ...(metric.histogram
                ? {
                    sum: Number(p.sum ?? 0),
                    bounds: (p.explicitBounds ?? []).map(Number),
                    buckets: (p.bucketCounts ?? []).map(Number),
                  }
                : {}),
            });
        }
  }
}

/** A receiver started before each test of the file and stopped after it. */
export function useOtlpReceiver(hooks: {
  beforeEach: (fn: () => Promise<void>) => void;
  afterEach: (fn: () => Promise<void>) => void;
}) {
  const state = { receiver: new OtlpReceiver(), endpoint: '' };
  hooks.beforeEach(async () => {
    state.receiver = new OtlpReceiver();
    state.endpoint = await state.receiver.start();
  });
  hooks.afterEach(() => state.receiver.stop());
  return state;
}
