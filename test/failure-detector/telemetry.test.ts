import { VirtualClock } from '@bulwark/clock';
import {
  encodeHeartbeat,
  fixedTimeout,
  heartbeatMonitor,
  httpPinger,
  udpHeartbeatReceiver,
} from '@bulwark/failure-detector';
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

describe('failure-detector telemetry', () => {
  it('counts transitions, dropped heartbeats by reason, and probe outcomes', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

    const clock = new VirtualClock();
    const monitor = heartbeatMonitor({
      clock,
      name: 'db',
      peers: ['a'],
      detector: () => fixedTimeout({ clock, timeoutMs: 300 }),
    });
    const receiver = udpHeartbeatReceiver({ monitor, key: 'sixteen bytes at least' });
    const from = { address: '127.0.0.1', port: 1 };
    const packet = { peerId: 'a', incarnation: 'aaaaaaaaaaaaaaaa', sequence: 1, sentAt: 0 };
    receiver.receive(encodeHeartbeat(packet, 'sixteen bytes at least'), from);
    receiver.receive(encodeHeartbeat(packet, 'sixteen bytes at least'), from);
    receiver.receive(encodeHeartbeat(packet), from);
    receiver.receive(Buffer.from('x'), from);
    monitor.heartbeat('stranger');
    await clock.advance(500);
    monitor.heartbeat('a');
    const pinger = httpPinger({
      url: 'http://b/health',
      peerId: 'b',
      monitor,
      intervalMs: 100,
      clock,
      fetch: async () => ({ status: 503 }),
    });
    await clock.advance(50);
    pinger.dispose();
    receiver.dispose();
    monitor.dispose();

    await reader.forceFlush();
    const points = new Map<string, Array<{ attributes: Record<string, unknown>; value: unknown }>>();
    for (const rm of exporter.getMetrics())
      for (const sm of rm.scopeMetrics) {
        expect(sm.scope.name).toBe('@bulwark/failure-detector');
        for (const m of sm.metrics)
          points.set(
            m.descriptor.name,
            m.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value })),
          );
      }
    expect(points.get('bulwark.failure_detector.transitions')).toEqual(
      expect.arrayContaining([
        { attributes: { to: 'suspect', monitor: 'db' }, value: 1 },
        { attributes: { to: 'available', monitor: 'db' }, value: 1 },
      ]),
    );
    expect(points.get('bulwark.failure_detector.dropped')).toEqual(
      expect.arrayContaining([
        { attributes: { reason: 'replayed' }, value: 1 },
        { attributes: { reason: 'unauthenticated' }, value: 1 },
        { attributes: { reason: 'malformed' }, value: 1 },
        { attributes: { reason: 'unknown-peer', monitor: 'db' }, value: 1 },
      ]),
    );
    expect(points.get('bulwark.failure_detector.probes')).toEqual([
      { attributes: { outcome: 'bad-status' }, value: 1 },
    ]);
  });
});
