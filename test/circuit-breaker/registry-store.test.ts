import {
  circuitBreaker,
  circuitBreakers,
  consecutive,
  memoryBreakerStateStore,
} from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { InvalidOptionsError } from '@bulwark/core';
import { describe, expect, it } from 'vitest';

const fail = () => {
  throw new Error('down');
};

describe('circuitBreakers() registry', () => {
  it('gives one breaker per key, the same one on every get', async () => {
    const clock = new VirtualClock();
    const registry = circuitBreakers({ clock, trip: consecutive(1) });
    const a = registry.get('a.internal');
    expect(registry.get('a.internal')).toBe(a);
    await a.execute(fail).catch(() => undefined);
    expect(a.state).toBe('open');
    expect(registry.get('b.internal').state).toBe('closed');
  });

  it('evicts the least recently used closed breaker first', () => {
    const registry = circuitBreakers({ clock: new VirtualClock(), maxKeys: 3 });
    registry.get('a');
    registry.get('b');
    registry.get('c');
    registry.get('a'); // a is now the most recently used
    registry.get('d');
    expect([...registry.keys()]).toEqual(['c', 'a', 'd']);
    expect(registry.evicted).toBe(1);
  });

  it('keeps open breakers while closed ones can go, and evicts an open one only when all are open', async () => {
    const registry = circuitBreakers({ clock: new VirtualClock(), trip: consecutive(1), maxKeys: 2 });
    await registry
      .get('open-1')
      .execute(fail)
      .catch(() => undefined);
    registry.get('closed-1');
    registry.get('new-1');
    expect(registry.peek('open-1')?.state).toBe('open');
    expect(registry.peek('closed-1')).toBeUndefined();
    await registry
      .get('new-1')
      .execute(fail)
      .catch(() => undefined);
    registry.get('new-2');
    expect([...registry.keys()]).toEqual(['new-1', 'new-2']);
    expect(registry.size).toBe(2);
  });

  it('checks the breaker options once, when the registry is made', () => {
    expect(() => circuitBreakers({ openMs: -5, maxKeys: 0 })).toThrow(InvalidOptionsError);
    expect(() => circuitBreakers({ openMs: -5 })).toThrow(/openMs must be .*got -5/);
  });
});

describe('breaker state stores', () => {
  it('publishes trips and lets another breaker adopt the fleet’s open state, without waiting on the store', async () => {
    const clock = new VirtualClock();
    const store = memoryBreakerStateStore({ clock });
    const here = circuitBreaker({ clock, name: 'pay', store, trip: consecutive(1), openMs: 1_000 });
    const there = circuitBreaker({ clock, name: 'pay', store, trip: consecutive(1), openMs: 1_000 });
    await here.execute(fail).catch(() => undefined);
    await clock.advance(200);
    expect(there.state).toBe('closed');
    await there.syncFromStore();
    expect(there.state).toBe('open');
    expect(there.stats().openRemainingMs).toBe(800);
  });

  it('reports a failing store through onError and carries on', async () => {
    const clock = new VirtualClock();
    const store = {
      publish: () => Promise.reject(new Error('store down')),
      read: () => Promise.reject(new Error('store down')),
    };
    const breaker = circuitBreaker({ clock, name: 'x', store, trip: consecutive(1) });
    const errors: string[] = [];
    breaker.onError((e) => errors.push((e.error as Error).message));
    await breaker.execute(fail).catch(() => undefined);
    await breaker.syncFromStore();
    await clock.runAll();
    expect(breaker.state).toBe('open');
    expect(errors).toEqual(['store down', 'store down']);
  });
});
