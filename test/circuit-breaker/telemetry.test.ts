import { circuitBreaker, circuitBreakers, consecutive } from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { installOtel, resetOtel } from '../support/otel.ts';

afterEach(resetOtel);

describe('circuit breaker telemetry', () => {
  it('reports calls, refusals, transitions, the state gauge and a span event on trips', async () => {
    const otel = installOtel({ tracing: true });

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

    const collected = await otel.collect();
    const points = (name: string) =>
      collected
        .points(name)
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
    expect(otel.events()).toEqual([
      ['bulwark.circuit.opened', { breaker: 'payments', reason: 'trip', open_ms: 1_000 }],
    ]);
  });
});
