import { Telemetry } from '@bulwark/core/authoring';
import { context, metrics, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { installOtel, resetOtel } from '../support/otel.ts';

// Instruments are created before any SDK exists, as when bulwark is imported first.
const telemetry = new Telemetry('@bulwark/test', '0.0.0');
const calls = telemetry.counter('bulwark.test.calls', { description: 'test calls', unit: '{call}' });
let gaugeValue = 3;
const gauge = telemetry.gauge('bulwark.test.level', { description: 'test level', unit: '1' }, (result) =>
  result.observe(gaugeValue, { which: 'only' }),
);

afterEach(resetOtel);

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
    const otel = installOtel();
    calls.add(2, { outcome: 'ok' });
    calls.add(1, { outcome: 'ok' });
    gaugeValue = 7;
    gauge.refresh();
    const collected = await otel.collect();
    const counter = collected.metric('bulwark.test.calls');
    const level = collected.metric('bulwark.test.level');
    expect(counter.dataPoints[0]?.value).toBe(3);
    expect(counter.dataPoints[0]?.attributes).toEqual({ outcome: 'ok' });
    expect(level.dataPoints[0]?.value).toBe(7);
    expect(collected.scopes[0]?.scope.name).toBe('@bulwark/test');
  });

  it('follows the global provider when it is replaced', async () => {
    const first = installOtel();
    calls.add(1, { outcome: 'first' });
    metrics.disable();
    calls.add(100, { outcome: 'while none is registered' });
    const second = installOtel();
    calls.add(5, { outcome: 'second' });
    const points = async (otel: typeof first) =>
      (await otel.collect()).points('bulwark.test.calls').map((p) => [p.outcome, p.value]);
    expect(await points(first)).toEqual([['first', 1]]);
    expect(await points(second)).toEqual([['second', 5]]);
  });

  it('adds span events to the active recording span', () => {
    const otel = installOtel({ tracing: true });
    const span = trace.getTracer('t').startSpan('call');
    context.with(trace.setSpan(context.active(), span), () => {
      telemetry.spanEvent('bulwark.test.event', () => ({ attempt: 2 }));
    });
    span.end();
    expect(otel.events()).toEqual([['bulwark.test.event', { attempt: 2 }]]);
  });
});
