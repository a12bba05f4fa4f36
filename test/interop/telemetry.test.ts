import { VirtualClock } from '@bulwark/clock';
import { fromOpossum, opossumPolicy } from '@bulwark/interop/opossum';
import { trace } from '@opentelemetry/api';
import CircuitBreaker from 'opossum';
import { afterEach, describe, expect, it } from 'vitest';
import { installOtel, resetOtel } from '../support/otel.ts';

afterEach(resetOtel);

describe('opossum telemetry bridge', () => {
  it("reports an opossum breaker's events under the native metric names, with source: 'opossum'", async () => {
    const otel = installOtel({ tracing: true });

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

    const collected = await otel.collect('@bulwark/interop');
    const points = (name: string) => collected.points(name);
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
    const opened = otel.spans()[0]!.events.find((e) => e.name === 'bulwark.circuit.opened');
    expect(opened?.attributes).toEqual({
      breaker: 'billing',
      reason: 'trip',
      open_ms: 3_000,
      source: 'opossum',
    });

    call.dispose();
    policy.dispose();
    breaker.shutdown();
    const after = await otel.collect('@bulwark/interop');
    const gauge = after.has('bulwark.circuit.state') ? after.points('bulwark.circuit.state') : [];
    const live = gauge.filter((p) => (p.breaker === 'billing' || p.breaker === 'search') && p.value !== 0);
    expect(live).toEqual([]);
  });
});
