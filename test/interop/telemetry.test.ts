import { VirtualClock } from '@bulwark/clock';
import { fromOpossum, opossumPolicy } from '@bulwark/interop/opossum';
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import CircuitBreaker from 'opossum';
import { afterEach, describe, expect, it } from 'vitest';

afterEach(() => {
  metrics.disable();
  trace.disable();
  context.disable();
});

describe('opossum telemetry bridge', () => {
  it("reports an opossum breaker's events under the native metric names, with source: 'opossum'", async () => {
    const reader = new PeriodicExportingMetricReader({
      exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
      exportIntervalMillis: 60_000,
    });
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    const spans = new InMemorySpanExporter();
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }),
    );

    const clock = new VirtualClock();
    const breaker = new CircuitBreaker(
      async (ok: boolean) => {
        if (!ok) throw new Error('down');
        return 'ok';
      },
      { name: 'billing', timeout: false, resetTimeout: 3_000, errorThresholdPercentage: 40 },
    );
    const call = fromOpossum(breaker, { clock });
    const policy = opossumPolicy({ name: 'search', timeout: false }, { clock });
    await trace.getTracer('t').startActiveSpan('request', async (span) => {
      await call(true);
      await call(false).catch(() => undefined); // 1 of 2 failed: 50% > 40%, opens
      await call(true).catch(() => undefined); // refused
      span.end();
    });
    await policy.execute(() => 'found');

    const { resourceMetrics } = await reader.collect();
    const scope = resourceMetrics.scopeMetrics.find((s) => s.scope.name === '@bulwark/interop')!;
    const points = (name: string) =>
      scope.metrics
        .find((m) => m.descriptor.name === name)!
        .dataPoints.map((p) => ({ ...p.attributes, value: p.value }) as Record<string, unknown>);
    expect(points('bulwark.circuit.calls')).toEqual(
      expect.arrayContaining([
        { breaker: 'billing', source: 'opossum', outcome: 'success', value: 1 },
        { breaker: 'billing', source: 'opossum', outcome: 'failure', value: 1 },
        { breaker: 'search', source: 'opossum', outcome: 'success', value: 1 },
      ]),
    );
    expect(points('bulwark.circuit.refusals')).toEqual([
      { breaker: 'billing', source: 'opossum', state: 'open', value: 1 },
    ]);
    expect(points('bulwark.circuit.transitions')).toEqual([
      { breaker: 'billing', source: 'opossum', from: 'closed', to: 'open', value: 1 },
    ]);
    expect(points('bulwark.circuit.state').filter((p) => p.value !== 0)).toEqual(
      expect.arrayContaining([
        { breaker: 'billing', source: 'opossum', state: 'open', value: 1 },
        { breaker: 'search', source: 'opossum', state: 'closed', value: 1 },
      ]),
    );
    const opened = spans.getFinishedSpans()[0]!.events.find((e) => e.name === 'bulwark.circuit.opened');
    expect(opened?.attributes).toEqual({
      breaker: 'billing',
      reason: 'trip',
      open_ms: 3_000,
      source: 'opossum',
    });

    call.dispose();
    policy.dispose();
    breaker.shutdown();
    const after = await reader.collect();
    const gauge = after.resourceMetrics.scopeMetrics
      .find((s) => s.scope.name === '@bulwark/interop')!
      .metrics.find((m) => m.descriptor.name === 'bulwark.circuit.state');
    const live = (gauge?.dataPoints ?? []).filter(
      (p) => (p.attributes.breaker === 'billing' || p.attributes.breaker === 'search') && p.value !== 0,
    );
    expect(live).toEqual([]);
  });
});
