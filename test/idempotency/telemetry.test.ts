import { idempotency, memoryStore } from '@bulwark/idempotency';
import { type Attributes, type Meter, type MeterProvider, metrics } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';

function recordingProvider(): {
  provider: MeterProvider;
  adds: Array<[string, number, Attributes | undefined]>;
} {
  const adds: Array<[string, number, Attributes | undefined]> = [];
  const meter = {
    createCounter: (name: string) => ({
      add: (value: number, attributes?: Attributes) => adds.push([name, value, attributes]),
    }),
  } as unknown as Meter;
  return { provider: { getMeter: () => meter }, adds };
}

describe('idempotency telemetry', () => {
  afterEach(() => metrics.disable());

  it('counts requests by outcome and executed requests by what became of their record', async () => {
    const { provider, adds } = recordingProvider();
    metrics.setGlobalMeterProvider(provider);
    const guard = idempotency<number>({ store: memoryStore(), storeOutcome: (v) => v < 500 });
    await guard.run('a', 'req', () => 1);
    await guard.run('a', 'req', () => 2);
    await guard.run('a', 'other', () => 3);
    await guard.run('b', 'req', () => 503);
    expect(adds).toEqual([
      ['bulwark.idempotency.requests', 1, { outcome: 'executed' }],
      ['bulwark.idempotency.completions', 1, { result: 'stored' }],
      ['bulwark.idempotency.requests', 1, { outcome: 'replayed' }],
      ['bulwark.idempotency.requests', 1, { outcome: 'mismatch' }],
      ['bulwark.idempotency.requests', 1, { outcome: 'executed' }],
      ['bulwark.idempotency.completions', 1, { result: 'released' }],
    ]);
  });

  it('counts a request refused because the store is down as store-error', async () => {
    const { provider, adds } = recordingProvider();
    metrics.setGlobalMeterProvider(provider);
    const fail = () => Promise.reject(new Error('down'));
    const guard = idempotency({ store: { begin: fail, renew: fail, complete: fail, release: fail } });
    await expect(guard.run('k', 'req', () => 1)).rejects.toThrow(/store unavailable during begin/);
    expect(adds).toEqual([['bulwark.idempotency.requests', 1, { outcome: 'store-error' }]]);
  });
});
