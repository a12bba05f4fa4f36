import { circuitBreaker, circuitBreakers, consecutive } from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
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
import { afterEach, describe, expect, it } from 'vitest';

afterEach(() => {
  metrics.disable();
  trace.disable();
  context.disable();
});

describe('circuit breaker telemetry', () => {
  it('reports calls, refusals, transitions, the state gauge and a span event on trips', async () => {
    const reader = new PeriodicExportingMetricReader({
      exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
      exportIntervalMillis: 60_000,
    });
    const provider = new MeterProvider({ readers: [reader] });
    metrics.setGlobalMeterProvider(provider);
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    const spans = new InMemorySpanExporter();
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }),
    );

    const clock = new VirtualClock();
    const registry = circuitBreakers({ clock, name: 'hosts', trip: consecutive(1) });
    registry.get('a');
    registry.get('b');
    const breaker = circuitBreaker({ clock, name: 'payments', trip: consecutive(1), openMs: 1_000 });
    await trace.getTracer('t').startActiveSpan('call', async (span) => {
      await breaker.execute(() => 'ok');
      await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
      await breaker.execute(() => 'refused').catch(() => undefined);
      span.end();
    });
    await registry
      .get('a')
      .execute(() => Promise.reject(new Error('down')))
      .catch(() => undefined);
    // A breaker that left its registry (evicted, then tripped by a caller still holding it)
    // no longer counts in the gauge.
    const small = circuitBreakers({ clock, name: 'small', trip: consecutive(1), maxKeys: 1 });
    const left = small.get('x');
    small.get('y');
    await left.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
    expect(left.state).toBe('open');

    const { resourceMetrics } = await reader.collect();
    const all = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
    const points = (name: string) =>
      all
        .find((m) => m.descriptor.name === name)!
        .dataPoints.map((p) => ({ ...p.attributes, value: p.value }) as Record<string, unknown>)
        .filter((p) => p.breaker === 'payments' || p.breaker === 'hosts' || p.breaker === 'small');
    expect(points('bulwark.circuit.calls')).toEqual(
      expect.arrayContaining([
        { breaker: 'payments', outcome: 'success', value: 1 },
        { breaker: 'payments', outcome: 'failure', value: 1 },
      ]),
    );
    expect(points('bulwark.circuit.refusals')).toEqual([{ breaker: 'payments', state: 'open', value: 1 }]);
    expect(points('bulwark.circuit.transitions')).toEqual(
      expect.arrayContaining([
        { breaker: 'payments', from: 'closed', to: 'open', value: 1 },
        { breaker: 'hosts', from: 'closed', to: 'open', value: 1 },
      ]),
    );
    const gauge = points('bulwark.circuit.state').filter((p) => p.value !== 0);
    expect(gauge).toEqual(
      expect.arrayContaining([
        { breaker: 'payments', state: 'open', value: 1 },
        { breaker: 'hosts', state: 'open', value: 1 },
        { breaker: 'hosts', state: 'closed', value: 1 },
      ]),
    );
    expect(gauge.filter((p) => p.breaker === 'small')).toEqual([
      { breaker: 'small', state: 'closed', value: 1 },
    ]);
    const events = spans.getFinishedSpans()[0]!.events.map((e) => [e.name, e.attributes]);
    expect(events).toEqual([
      ['bulwark.circuit.opened', { breaker: 'payments', reason: 'trip', open_ms: 1_000 }],
    ]);
    await provider.shutdown();
  });
});
