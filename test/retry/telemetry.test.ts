import { VirtualClock } from '@bulwark/clock';
import { constant, retry } from '@bulwark/retry';
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

describe('retry telemetry', () => {
  it('counts attempts and give-ups, and adds a span event per retry', async () => {
    const reader = new PeriodicExportingMetricReader({
      exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
      exportIntervalMillis: 60_000,
    });
    const meterProvider = new MeterProvider({ readers: [reader] });
    metrics.setGlobalMeterProvider(meterProvider);
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    const spans = new InMemorySpanExporter();
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }),
    );

    const clock = new VirtualClock();
    const policy = retry({ clock, backoff: constant(10) });
    const fail = () => {
      throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
    };
    await trace.getTracer('test').startActiveSpan('call', async (span) => {
      const done = policy.execute(fail).catch(() => undefined);
      await clock.runAll();
      await done;
      span.end();
    });

    const { resourceMetrics } = await reader.collect();
    const all = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
    const attempts = all.find((m) => m.descriptor.name === 'bulwark.retry.attempts');
    const points = Object.fromEntries(attempts!.dataPoints.map((p) => [String(p.attributes.retry), p.value]));
    expect(points).toEqual({ false: 1, true: 2 });
    const giveups = all.find((m) => m.descriptor.name === 'bulwark.retry.giveups');
    expect(giveups!.dataPoints.map((p) => [p.attributes.reason, p.value])).toEqual([['attempts', 1]]);
    const events = spans.getFinishedSpans()[0]!.events;
    expect(events.map((e) => [e.name, e.attributes])).toEqual([
      ['bulwark.retry', { attempt: 1, delay_ms: 10 }],
      ['bulwark.retry', { attempt: 2, delay_ms: 10 }],
    ]);
    await meterProvider.shutdown();
  });
});
