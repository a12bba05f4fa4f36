import {
  circuitBreaker,
  circuitBreakers,
  consecutive,
  memoryBreakerStateStore,
} from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { InvalidOptionsError } from '@bulwark/core';
import fc from 'fast-check';
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

  it('never evicts an open breaker: when all others are open, the new key’s breaker is not kept', async () => {
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
    // Both held breakers are open: the new key gets a working breaker, but it is not kept.
    const unkept = registry.get('new-2');
    expect(unkept.state).toBe('closed');
    expect(await unkept.execute(() => 'through')).toBe('through');
    expect([...registry.keys()]).toEqual(['open-1', 'new-1']);
    expect(registry.peek('new-2')).toBeUndefined();
    expect(registry.size).toBe(2);
    expect(registry.evicted).toBe(2);
  });

  it('evicts an idle closed breaker before one with a call in flight', () => {
    const registry = circuitBreakers({ clock: new VirtualClock(), maxKeys: 2 });
    const busy = registry.get('busy').tryAcquire()!; // a call in flight
    registry.get('idle');
    registry.get('new');
    expect([...registry.keys()]).toEqual(['busy', 'new']);
    busy.success();
    registry.get('newer'); // busy is idle now, and the least recently used
    expect([...registry.keys()]).toEqual(['new', 'newer']);
  });

  it('keeps every open breaker and stays within maxKeys, whatever the sequence of keys', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5 }),
        fc.array(
          fc.record({ key: fc.integer({ min: 0, max: 9 }), fail: fc.boolean(), advance: fc.nat(400) }),
          { maxLength: 80 },
        ),
        async (maxKeys, steps) => {
          const clock = new VirtualClock();
          const registry = circuitBreakers({ clock, trip: consecutive(1), openMs: 1_000, maxKeys });
          for (const step of steps) {
            const held = [...registry.keys()].map((k) => registry.peek(k)!);
            const notClosed = held.filter((b) => b.state !== 'closed');
            const breaker = registry.get(`k${step.key}`);
            if (step.fail) await breaker.execute(fail).catch(() => undefined);
            else await breaker.execute(() => 'ok').catch(() => undefined);
            await clock.advance(step.advance);
            expect(registry.size).toBeLessThanOrEqual(maxKeys);
            const now = new Set([...registry.keys()].map((k) => registry.peek(k)));
            // A breaker that was open, half-open or isolated before the get is still held.
            expect(notClosed.filter((b) => !now.has(b))).toEqual([]);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('checks the breaker options once, when the registry is made', () => {
    let caught: unknown;
    try {
      circuitBreakers({ openMs: -5, maxKeys: 0, halfOpen: { maxProbes: 0 } });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidOptionsError);
    expect((caught as InvalidOptionsError).violations.map((v) => [v.option, v.value])).toEqual([
      ['maxKeys', 0],
      ['openMs', -5],
      ['halfOpen.maxProbes', 0],
    ]);
    expect(() => circuitBreakers({ openMs: -5 })).toThrow(/openMs must be .*got -5/);
  });

  // The registry used to check its breakers' options on a throwaway breaker
  // built without the store, so a bad store or syncIntervalMs passed
  // construction and failed at the first get().
  it.each([
    ['a store without publish and read', { store: {} }, 'store'],
    ['a store that is not an object', { store: 'redis' }, 'store'],
    [
      'a syncIntervalMs of 0',
      { store: { publish: async () => {}, read: async () => undefined, syncIntervalMs: 0 } },
      'store.syncIntervalMs',
    ],
    ['a clock that is not a Clock', { clock: {} }, 'clock'],
    ['an initialState (one per breaker, not per registry)', { initialState: { version: 1 } }, 'initialState'],
    ['a storeKey (derived per key)', { storeKey: 'x' }, 'storeKey'],
  ])('refuses %s when the registry is made, not at the first get()', (_, options, option) => {
    let caught: unknown;
    try {
      circuitBreakers(options as never);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidOptionsError);
    expect((caught as InvalidOptionsError).message).toContain('circuitBreakers()');
    expect((caught as InvalidOptionsError).violations.map((v) => v.option)).toEqual([option]);
  });

  it('builds every breaker from the options resolved once: shared trips, a storeKey per key', async () => {
    const clock = new VirtualClock();
    const store = memoryBreakerStateStore({ clock });
    const trip = [consecutive(1)];
    const registry = circuitBreakers({ clock, name: 'hosts', store, trip, openMs: 1_000 });
    trip.length = 0; // the registry holds its own frozen copy
    const a = registry.get('a');
    const b = registry.get('b');
    expect(a.trips).toBe(b.trips);
    expect(Object.isFrozen(a.trips)).toBe(true);
    expect(a.trips).toHaveLength(1);
    await a.execute(fail).catch(() => undefined);
    expect(store.read('hosts:a')?.state).toBe('open');
    expect(store.read('hosts:b')).toBeUndefined();
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

  it('adopts an isolation published by the fleet as an open state of its own openMs', async () => {
    const clock = new VirtualClock();
    const store = memoryBreakerStateStore({ clock });
    const here = circuitBreaker({ clock, name: 'iso', store, openMs: 60_000 });
    const there = circuitBreaker({ clock, name: 'iso', store, openMs: 60_000 });
    here.isolate();
    await there.syncFromStore();
    expect(there.state).toBe('open');
    expect(there.stats().openRemainingMs).toBe(60_000);
  });

  it('bounds the in-memory store by maxKeys, least recently published out, and checks its options', () => {
    const clock = new VirtualClock();
    const store = memoryBreakerStateStore({ clock, maxKeys: 2 });
    const snapshot = { version: 1, state: 'open', openRemainingMs: 100, trips: 1 } as const;
    store.publish('a', snapshot);
    store.publish('b', snapshot);
    store.publish('a', snapshot); // a is now the most recent
    store.publish('c', snapshot);
    expect(store.read('b')).toBeUndefined();
    expect(store.read('a')?.state).toBe('open');
    expect(store.read('c')?.state).toBe('open');
    expect(() => memoryBreakerStateStore({ maxKeys: 0 })).toThrow(/maxKeys must be an integer >= 1, got 0/);
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

describe('circuitBreakers() LRU order under repeated gets', () => {
  it('keeps the order right when the same key is got again and again', () => {
    const clock = new VirtualClock();
    const registry = circuitBreakers({ clock, maxKeys: 3 });
    const a = registry.get('a');
    registry.get('b');
    registry.get('c');
    expect(registry.get('a')).toBe(a);
    expect(registry.get('a')).toBe(a);
    expect(registry.get('a')).toBe(a);
    expect([...registry.keys()]).toEqual(['b', 'c', 'a']);
    registry.get('d'); // evicts b, the least recently used
    expect([...registry.keys()]).toEqual(['c', 'a', 'd']);
    registry.get('d');
    registry.get('c');
    registry.get('c');
    expect([...registry.keys()]).toEqual(['a', 'd', 'c']);
    registry.get('e'); // evicts a
    expect([...registry.keys()]).toEqual(['d', 'c', 'e']);
    expect(registry.evicted).toBe(2);
  });

  it('hands out a new breaker after the last one got is deleted or evicted', async () => {
    const clock = new VirtualClock();
    const registry = circuitBreakers({ clock, maxKeys: 1, trip: consecutive(1) });
    const a = registry.get('a');
    expect(registry.delete('a')).toBe(true);
    const a2 = registry.get('a');
    expect(a2).not.toBe(a);
    expect(registry.get('a')).toBe(a2);
    // With the only other breaker open, the new key's breaker is handed out but not kept.
    await a2.execute(fail).catch(() => undefined);
    expect(a2.state).toBe('open');
    const b = registry.get('b');
    expect([...registry.keys()]).toEqual(['a']);
    const b2 = registry.get('b');
    expect(b2).not.toBe(b);
    expect(registry.evicted).toBe(2);
  });

  it('matches a reference LRU for any sequence of gets and deletes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.constantFrom('a', 'b', 'c', 'd', 'e')), { maxLength: 60 }),
        fc.integer({ min: 1, max: 4 }),
        (ops, maxKeys) => {
          const registry = circuitBreakers({ clock: new VirtualClock(), maxKeys });
          const model: string[] = [];
          for (const [isDelete, key] of ops) {
            const at = model.indexOf(key);
            if (isDelete) {
              expect(registry.delete(key)).toBe(at >= 0);
              if (at >= 0) model.splice(at, 1);
            } else {
              registry.get(key);
              if (at >= 0) model.splice(at, 1);
              model.push(key);
              if (model.length > maxKeys) model.shift();
            }
            expect([...registry.keys()]).toEqual(model);
          }
        },
      ),
    );
  });
});

describe('memoryBreakerStateStore() bound', () => {
  it('keeps the maxKeys keys published last: publishing a key again makes it the newest', () => {
    const clock = new VirtualClock();
    const store = memoryBreakerStateStore({ clock, maxKeys: 2 });
    const open = { version: 1, state: 'open', openRemainingMs: 1_000, trips: 1 } as const;
    store.publish('a', open);
    store.publish('b', open);
    store.publish('a', { ...open, trips: 2 });
    store.publish('c', open); // over the bound: b, published least recently, goes
    expect(store.read('b')).toBeUndefined();
    expect(store.read('a')).toMatchObject({ trips: 2 });
    expect(store.read('c')).toMatchObject({ state: 'open' });
    // A read is not a publish: it does not keep a key.
    store.read('a');
    store.publish('d', open);
    expect(store.read('a')).toBeUndefined();
    expect(store.read('c')).toBeDefined();
  });
});
