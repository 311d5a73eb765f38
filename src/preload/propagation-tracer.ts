/**
 * The tracer installed when nothing consumes spans (no exporter configured, no span processor passed in
 * code). Spans are still started by every instrumentation, with real trace and span ids and the configured
 * sampler's decision, so logs carry trace ids, outgoing requests carry `traceparent` with the right sampled
 * flag, and downstream services keep their traces. What is skipped is recording: attributes, events, timings
 * and the span objects that hold them, which nobody would read (docs/design.md#propagation-only-spans).
 *
 * A span here is non-recording (`isRecording()` is false, so instrumentations skip their attribute work, as
 * they do for unsampled spans), and makes its ids and sampling decision only when first asked.
 */
import {
  type Context,
  context,
  isSpanContextValid,
  type Span,
  type SpanContext,
  SpanKind,
  type SpanOptions,
  TraceFlags,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { type IdGenerator, RandomIdGenerator, type Sampler, SamplingDecision } from './otel-vendor.js';

/**
 * A non-recording span whose ids and sampling decision are made when first asked for. Most spans of a
 * pg-heavy app are query spans that nothing asks (they are never made active; only a slow or failed query's
 * record reads its ids), so most never pay for id generation or the sampler.
 */
class LazySpan implements Span {
  private context: SpanContext | undefined;

  constructor(
    private readonly decide: (span: LazySpan) => SpanContext,
    readonly name: string,
    readonly parentContext: Context,
    readonly options: SpanOptions,
  ) {}

  spanContext(): SpanContext {
    this.context ??= this.decide(this);
    return this.context;
  }
  isRecording(): boolean {
    return false;
  }
  setAttribute(): this {
    return this;
  }
  setAttributes(): this {
    return this;
  }
  addEvent(): this {
    return this;
  }
  addLink(): this {
    return this;
  }
  addLinks(): this {
    return this;
  }
  setStatus(): this {
    return this;
  }
  updateName(): this {
    return this;
  }
  end(): void {}
  recordException(): void {}
}

class PropagationTracer implements Tracer {
  private readonly decide: (span: LazySpan) => SpanContext;

  constructor(sampler: Sampler, ids: IdGenerator) {
    this.decide = (span) => {
      const { options } = span;
      const ctx = options.root ? trace.deleteSpan(span.parentContext) : span.parentContext;
      const parent = trace.getSpanContext(ctx);
      const inherited = parent !== undefined && isSpanContextValid(parent);
      const traceId = inherited ? parent.traceId : ids.generateTraceId();
      const result = sampler.shouldSample(
        ctx,
        traceId,
        span.name,
        options.kind ?? SpanKind.INTERNAL,
        options.attributes ?? {},
        options.links ?? [],
      );
      const spanContext: SpanContext = {
        traceId,
        spanId: ids.generateSpanId(),
        traceFlags:
          result.decision === SamplingDecision.RECORD_AND_SAMPLED ? TraceFlags.SAMPLED : TraceFlags.NONE,
      };
      const traceState = result.traceState ?? (inherited ? parent.traceState : undefined);
      if (traceState) spanContext.traceState = traceState;
      return spanContext;
    };
  }

  startSpan(name: string, options: SpanOptions = {}, parentContext: Context = context.active()): Span {
    return new LazySpan(this.decide, name, parentContext, options);
  }

  startActiveSpan<F extends (span: Span) => unknown>(name: string, ...rest: unknown[]): ReturnType<F> {
    // (name, fn) | (name, options, fn) | (name, options, context, fn), as the API defines it.
    const fn = rest[rest.length - 1] as F;
    const options = (rest.length >= 2 ? rest[0] : undefined) as SpanOptions | undefined;
    const parent = (rest.length >= 3 ? rest[1] : undefined) as Context | undefined;
    const ctx = parent ?? context.active();
    const span = this.startSpan(name, options, ctx);
    return context.with(trace.setSpan(ctx, span), fn as (span: Span) => ReturnType<F>, undefined, span);
  }
}

export class PropagationTracerProvider implements TracerProvider {
  private readonly tracer: PropagationTracer;

  constructor(sampler: Sampler) {
    this.tracer = new PropagationTracer(sampler, new RandomIdGenerator());
  }

  getTracer(): Tracer {
    return this.tracer;
  }
}
