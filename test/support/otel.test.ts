// The shared OpenTelemetry harness refuses to answer rather than guess, so the
// telemetry tests built on it cannot pass by reading the wrong thing.
import { metrics, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { installOtel, resetOtel } from './otel.ts';

afterEach(resetOtel);

describe('installOtel', () => {
  it('sums an instrument by one attribute and lists its points with their attributes', async () => {
    const otel = installOtel();
    const counter = metrics.getMeter('@bulwark/a').createCounter('bulwark.test.calls');
    counter.add(2, { outcome: 'ok', route: 'x' });
    counter.add(3, { outcome: 'ok', route: 'y' });
    counter.add(1, { outcome: 'failed', route: 'x' });
    const collected = await otel.collect();
    expect(collected.sum('bulwark.test.calls', 'outcome')).toEqual({ ok: 5, failed: 1 });
    expect(collected.points('bulwark.test.calls')).toEqual(
      expect.arrayContaining([
        { outcome: 'ok', route: 'x', value: 2 },
        { outcome: 'ok', route: 'y', value: 3 },
        { outcome: 'failed', route: 'x', value: 1 },
      ]),
    );
    expect(collected.has('bulwark.test.calls')).toBe(true);
    expect(collected.has('bulwark.test.other')).toBe(false);
  });

  it('throws for an instrument that was not recorded, or that two scopes recorded unless one is named', async () => {
    const otel = installOtel();
    metrics.getMeter('@bulwark/a').createCounter('bulwark.test.calls').add(1);
    metrics.getMeter('@bulwark/b').createCounter('bulwark.test.calls').add(4);
    const all = await otel.collect();
    expect(() => all.points('bulwark.test.missing')).toThrow('metric bulwark.test.missing was not recorded');
    expect(() => all.sum('bulwark.test.calls', 'outcome')).toThrow(/recorded in 2 scopes/);
    expect((await otel.collect('@bulwark/b')).points('bulwark.test.calls')).toEqual([{ value: 4 }]);
    await expect(otel.collect('@bulwark/c')).rejects.toThrow(
      'no metrics were collected from scope @bulwark/c',
    );
  });

  it('refuses to install over a provider still registered, and installs again after resetOtel', async () => {
    installOtel();
    expect(() => installOtel()).toThrow(/already registered/);
    await resetOtel();
    const otel = installOtel();
    metrics.getMeter('@bulwark/a').createCounter('bulwark.test.calls').add(1);
    expect((await otel.collect()).sum('bulwark.test.calls', 'outcome')).toEqual({ undefined: 1 });
  });

  it('gives the events of the one finished span, and throws when there is not exactly one', () => {
    const otel = installOtel({ tracing: true });
    expect(() => otel.events()).toThrow('expected one finished span, found 0');
    const span = trace.getTracer('t').startSpan('call');
    span.addEvent('bulwark.test.event', { attempt: 1 });
    span.end();
    expect(otel.events()).toEqual([['bulwark.test.event', { attempt: 1 }]]);
    trace.getTracer('t').startSpan('another').end();
    expect(otel.spans()).toHaveLength(2);
    expect(() => otel.events()).toThrow('expected one finished span, found 2');
  });
});
