import { Telemetry } from '@bulwark/core';
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

// Instruments are created before any SDK exists, as when bulwark is imported first.
const telemetry = new Telemetry('@bulwark/test', '0.0.0');
const calls = telemetry.counter('bulwark.test.calls', { description: 'test calls', unit: '{call}' });
let gaugeValue = 3;
const gauge = telemetry.gauge('bulwark.test.level', { description: 'test level', unit: '1' }, (result) =>
  result.observe(gaugeValue, { which: 'only' }),
);

afterEach(() => {
  metrics.disable();
  trace.disable();
  context.disable();
});

describe('Telemetry', () => {
  it('costs nothing and throws nothing with no SDK registered', () => {
    expect(() => {
      calls.add(1, { outcome: 'ok' });
      gauge.refresh();
      telemetry.spanEvent('bulwark.test.event', () => {
        throw new Error('attributes are not built without a recording span');
      });
    }).not.toThrow();
  });

  it('records through an SDK registered after the instruments were created', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    const provider = new MeterProvider({ readers: [reader] });
    metrics.setGlobalMeterProvider(provider);
    calls.add(2, { outcome: 'ok' });
    calls.add(1, { outcome: 'ok' });
    gaugeValue = 7;
    gauge.refresh();
    const { resourceMetrics } = await reader.collect();
    const all = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
    const counter = all.find((m) => m.descriptor.name === 'bulwark.test.calls');
    const level = all.find((m) => m.descriptor.name === 'bulwark.test.level');
    expect(counter?.dataPoints[0]?.value).toBe(3);
    expect(counter?.dataPoints[0]?.attributes).toEqual({ outcome: 'ok' });
    expect(level?.dataPoints[0]?.value).toBe(7);
    expect(resourceMetrics.scopeMetrics[0]?.scope.name).toBe('@bulwark/test');
    await provider.shutdown();
  });

  it('follows the global provider when it is replaced', async () => {
    const first = new PeriodicExportingMetricReader({
      exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
      exportIntervalMillis: 60_000,
    });
    const firstProvider = new MeterProvider({ readers: [first] });
    metrics.setGlobalMeterProvider(firstProvider);
    calls.add(1, { outcome: 'first' });
    metrics.disable();
    calls.add(100, { outcome: 'while none is registered' });
    const second = new PeriodicExportingMetricReader({
      exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
      exportIntervalMillis: 60_000,
    });
    const secondProvider = new MeterProvider({ readers: [second] });
    metrics.setGlobalMeterProvider(secondProvider);
    calls.add(5, { outcome: 'second' });
    const points = async (reader: PeriodicExportingMetricReader) =>
      (await reader.collect()).resourceMetrics.scopeMetrics
        .flatMap((s) => s.metrics)
        .filter((m) => m.descriptor.name === 'bulwark.test.calls')
        .flatMap((m) => m.dataPoints.map((p) => [p.attributes.outcome, p.value]));
    expect(await points(first)).toEqual([['first', 1]]);
    expect(await points(second)).toEqual([['second', 5]]);
    await firstProvider.shutdown();
    await secondProvider.shutdown();
  });

  it('adds span events to the active recording span', () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(provider);
    const span = trace.getTracer('t').startSpan('call');
    context.with(trace.setSpan(context.active(), span), () => {
      telemetry.spanEvent('bulwark.test.event', () => ({ attempt: 2 }));
    });
    span.end();
    const [finished] = exporter.getFinishedSpans();
    expect(finished?.events.map((e) => [e.name, e.attributes])).toEqual([
      ['bulwark.test.event', { attempt: 2 }],
    ]);
  });
});
