import { bulkhead } from '@bulwark/bulkhead';
import { VirtualClock } from '@bulwark/clock';
import { metrics } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';

afterEach(() => {
  metrics.disable();
});

/** A call that finishes when `release()` is called. */
function gate() {
  let release!: () => void;
  const done = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { done, release };
}

describe('bulkhead telemetry', () => {
  it('tracks active calls and queue depth as up-down counters and counts rejections by reason', async () => {
    const reader = new PeriodicExportingMetricReader({
      exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
      exportIntervalMillis: 60_000,
    });
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    const clock = new VirtualClock();
    const b = bulkhead({ maxConcurrent: 2, maxQueue: 2, queueTimeoutMs: 100, name: 'db', clock });
    const points = async (name: string) => {
      const { resourceMetrics } = await reader.collect();
      const metric = resourceMetrics.scopeMetrics
        .flatMap((s) => s.metrics)
        .find((m) => m.descriptor.name === name);
      return (metric?.dataPoints ?? [])
        .map((p) => ({ ...p.attributes, value: p.value }) as Record<string, unknown>)
        .filter((p) => p.bulkhead === 'db');
    };

    const g = gate();
    const running = [b.execute(() => g.done), b.execute(() => g.done)];
    const waiting = [
      b.execute(() => 'a').catch((e: unknown) => e),
      b.execute(() => 'b').catch((e: unknown) => e),
    ];
    await b.execute(() => 'refused').catch(() => undefined);
    expect(await points('bulwark.bulkhead.active')).toEqual([{ bulkhead: 'db', value: 2 }]);
    expect(await points('bulwark.bulkhead.queued')).toEqual([{ bulkhead: 'db', value: 2 }]);

    await clock.advance(100); // both waiters time out
    await Promise.all(waiting);
    expect(await points('bulwark.bulkhead.queued')).toEqual([{ bulkhead: 'db', value: 0 }]);
    expect(await points('bulwark.bulkhead.rejections')).toEqual(
      expect.arrayContaining([
        { bulkhead: 'db', reason: 'queue-full', value: 1 },
        { bulkhead: 'db', reason: 'queue-timeout', value: 2 },
      ]),
    );
    g.release();
    await Promise.all(running);
    expect(await points('bulwark.bulkhead.active')).toEqual([{ bulkhead: 'db', value: 0 }]);
  });
});
