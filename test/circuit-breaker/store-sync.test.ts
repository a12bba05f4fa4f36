import {
  type BreakerSnapshot,
  type BreakerStateStore,
  circuitBreaker,
  memoryBreakerStateStore,
} from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { isBulwarkError } from '@bulwark/core';
import { describe, expect, it } from 'vitest';

/** A store whose reads are counted and answer `verdict`. */
function countingStore(syncIntervalMs: number | undefined) {
  const store = {
    syncIntervalMs,
    reads: 0,
    verdict: undefined as BreakerSnapshot | undefined,
    publish() {},
    read() {
      store.reads++;
      return Promise.resolve(store.verdict);
    },
  };
  return store;
}

const ok = () => Promise.resolve('ok');

describe('a store with syncIntervalMs', () => {
  it('is read at most once per interval while calls arrive, and never by an idle breaker', async () => {
    const clock = new VirtualClock();
    const store = countingStore(1_000);
    const breaker = circuitBreaker({ name: 'sync', clock, store });
    await clock.advance(10_000);
    expect(store.reads).toBe(0); // idle: no read, no timer
    expect(clock.pendingTimers).toBe(0);
    for (let i = 0; i < 50; i++) await breaker.execute(ok);
    expect(store.reads).toBe(1);
    await clock.advance(999);
    await breaker.execute(ok);
    expect(store.reads).toBe(1);
    await clock.advance(1);
    store.verdict = { version: 1, state: 'open', openRemainingMs: 5_000, trips: 1 };
    expect(await breaker.execute(ok)).toBe('ok'); // the call that starts the read is not held up
    await Promise.resolve();
    await Promise.resolve();
    expect(store.reads).toBe(2);
    expect(breaker.state).toBe('open');
    await expect(breaker.execute(ok)).rejects.toSatisfy((e) => isBulwarkError(e, 'ERR_CIRCUIT_OPEN'));
    expect(store.reads).toBe(2); // an open breaker reads nothing
  });

  it('without syncIntervalMs is read only by syncFromStore()', async () => {
    const clock = new VirtualClock();
    const store = countingStore(undefined);
    const breaker = circuitBreaker({ name: 'manual', clock, store });
    for (let i = 0; i < 10; i++) {
      await breaker.execute(ok);
      await clock.advance(10_000);
    }
    expect(store.reads).toBe(0);
    await breaker.syncFromStore();
    expect(store.reads).toBe(1);
    expect((memoryBreakerStateStore() as BreakerStateStore).syncIntervalMs).toBeUndefined();
  });

  it('refuses a store whose syncIntervalMs is not a positive number, naming the value', () => {
    const store: BreakerStateStore = { ...countingStore(0), syncIntervalMs: 0 };
    expect(() => circuitBreaker({ name: 'bad', store })).toThrow(/store\.syncIntervalMs.*0/s);
  });
});
