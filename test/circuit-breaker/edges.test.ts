// Windows and thresholds at their edges, options that could never trip, and a
// store that never answers.
import {
  type BreakerSnapshot,
  type BreakerStateStore,
  BrokenCircuitError,
  CircuitClosedError,
  circuitBreaker,
  consecutive,
  failureRate,
  slowCallRate,
} from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { InvalidOptionsError, isBulwarkError } from '@bulwark/core';
import { describe, expect, it } from 'vitest';

const fail = () => Promise.reject(new Error('down'));
const ok = () => 'ok';

describe('rate thresholds at their edges', () => {
  it('opens when the failure rate equals the threshold, not below it', async () => {
    const below = circuitBreaker({
      clock: new VirtualClock(),
      trip: failureRate({ threshold: 0.5, minimumCalls: 4, window: { kind: 'count', size: 4 } }),
    });
    await below.execute(ok);
    await below.execute(ok);
    await below.execute(ok);
    await below.execute(fail).catch(() => undefined); // 1 of 4 = 0.25
    expect(below.state).toBe('closed');
    await below.execute(fail).catch(() => undefined); // [ok, ok, F, F] = 0.5
    expect(below.state).toBe('open');
  });

  it('judges nothing until minimumCalls calls are in the window, then judges at once', async () => {
    const breaker = circuitBreaker({
      clock: new VirtualClock(),
      trip: failureRate({ threshold: 1, minimumCalls: 3, window: { kind: 'count', size: 10 } }),
    });
    await breaker.execute(fail).catch(() => undefined);
    await breaker.execute(fail).catch(() => undefined);
    expect(breaker.state).toBe('closed');
    await breaker.execute(fail).catch(() => undefined);
    expect(breaker.state).toBe('open');
  });

  it('counts a call of exactly slowerThanMs as slow, and one a millisecond faster as not', () => {
    const clock = new VirtualClock();
    const trip = slowCallRate({
      threshold: 1,
      slowerThanMs: 100,
      minimumCalls: 1,
      window: { kind: 'count', size: 1 },
    });
    const a = circuitBreaker({ clock, trip });
    a.tryAcquire()!.success(99);
    expect(a.state).toBe('closed');
    a.tryAcquire()!.success(100);
    expect(a.state).toBe('open');
  });

  it('measures durations on the clock when the policy runs the call', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({
      clock,
      trip: slowCallRate({
        threshold: 1,
        slowerThanMs: 250,
        minimumCalls: 2,
        window: { kind: 'count', size: 2 },
      }),
    });
    const slow = (ms: number) => () =>
      new Promise<string>((resolve) => clock.setTimeout(() => resolve('late'), ms));
    const first = breaker.execute(slow(249));
    await clock.advance(249);
    await first;
    const second = breaker.execute(slow(250));
    await clock.advance(250);
    await second;
    expect(breaker.state).toBe('closed'); // one of two slow
    const third = breaker.execute(slow(300));
    await clock.advance(300);
    await third;
    expect(breaker.state).toBe('open'); // [250, 300]: both slow
  });
});

describe('time windows at their edges', () => {
  // 1,000 ms in 4 buckets of 250 ms. The window covers the current bucket and the three before it.
  const make = (clock: VirtualClock) =>
    circuitBreaker({
      clock,
      trip: failureRate({ threshold: 1, minimumCalls: 2, window: { kind: 'time', ms: 1_000, buckets: 4 } }),
    });

  it('keeps a failure for as long as its bucket is one of the last four', async () => {
    const clock = new VirtualClock();
    const breaker = make(clock);
    await clock.advance(249); // the end of bucket 0
    await breaker.execute(fail).catch(() => undefined);
    await clock.advance(750); // t = 999: bucket 3, bucket 0 still in the window
    await breaker.execute(fail).catch(() => undefined);
    expect(breaker.state).toBe('open');
  });

  it('drops a whole bucket at once when the window moves past it', async () => {
    const clock = new VirtualClock();
    const breaker = make(clock);
    await breaker.execute(fail).catch(() => undefined); // t = 0, bucket 0
    await clock.advance(1_000); // t = 1,000: bucket 4, bucket 0 has slid out
    await breaker.execute(fail).catch(() => undefined);
    expect(breaker.state).toBe('closed');
    await clock.advance(1);
    await breaker.execute(fail).catch(() => undefined); // two failures in bucket 4: open
    expect(breaker.state).toBe('open');
  });

  it('forgets everything after a long idle gap, however long', async () => {
    const clock = new VirtualClock();
    const breaker = make(clock);
    await breaker.execute(fail).catch(() => undefined);
    await clock.advance(10_000_000);
    await breaker.execute(fail).catch(() => undefined);
    expect(breaker.state).toBe('closed');
  });
});

describe('options that could never trip', () => {
  it('refuses a minimumCalls larger than a count window can hold, naming both', () => {
    let caught: unknown;
    try {
      failureRate({ threshold: 0.5, minimumCalls: 20, window: { kind: 'count', size: 10 } });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidOptionsError);
    expect((caught as Error).message).toMatch(/minimumCalls must be at most window.size \(10\).*got 20/);
    expect(() =>
      slowCallRate({ threshold: 0.5, slowerThanMs: 1, minimumCalls: 6, window: { kind: 'count', size: 5 } }),
    ).toThrow(/minimumCalls/);
  });

  it('caps the default minimumCalls at the size of a small count window', async () => {
    const trip = failureRate({ threshold: 1, window: { kind: 'count', size: 3 } });
    expect(trip.minimumCalls).toBe(3);
    expect(failureRate({ threshold: 1 }).minimumCalls).toBe(10);
    const breaker = circuitBreaker({ clock: new VirtualClock(), trip });
    for (let i = 0; i < 3; i++) await breaker.execute(fail).catch(() => undefined);
    expect(breaker.state).toBe('open');
  });

  it('refuses an infinite openMs or probeTimeoutMs, which would leave it stuck', () => {
    expect(() => circuitBreaker({ openMs: Number.POSITIVE_INFINITY })).toThrow(/openMs/);
    expect(() => circuitBreaker({ halfOpen: { probeTimeoutMs: Number.POSITIVE_INFINITY } })).toThrow(
      /probeTimeoutMs/,
    );
  });
});

describe('a restored half-open breaker', () => {
  it('admits probes and explains a refusal', async () => {
    const snapshot: BreakerSnapshot = { version: 1, state: 'half-open', openRemainingMs: 0, trips: 2 };
    const breaker = circuitBreaker({ clock: new VirtualClock(), initialState: snapshot });
    expect(breaker.refusal().retryAfterMs).toBe(0);
    const probe = breaker.tryAcquire();
    expect(probe?.probe).toBe(true);
    expect(breaker.refusal().retryAfterMs).toBe(10_000);
    probe!.success();
    expect(breaker.state).toBe('closed');
  });
});

describe('refusal() on a closed breaker', () => {
  it('throws a CircuitClosedError that names the breaker, since a closed breaker refuses nothing', () => {
    const named = circuitBreaker({ clock: new VirtualClock(), name: 'search' });
    let caught: unknown;
    try {
      named.refusal();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CircuitClosedError);
    expect(isBulwarkError(caught, 'ERR_CIRCUIT_CLOSED')).toBe(true);
    expect((caught as CircuitClosedError).breaker).toBe('search');
    expect((caught as Error).message).toBe(
      'refusal(): circuit "search" is closed and refuses nothing; call refusal() only after tryAcquire() returned undefined',
    );
    const unnamed = circuitBreaker({ clock: new VirtualClock() });
    expect(() => unnamed.refusal()).toThrow(/^refusal\(\): the circuit is closed/);
    // Once the breaker refuses, refusal() describes it.
    unnamed.isolate();
    expect(unnamed.refusal()).toBeInstanceOf(BrokenCircuitError);
  });
});

describe('a store that never answers', () => {
  it('delays no decision: trips, refusals and probes happen at once', async () => {
    const clock = new VirtualClock();
    const published: BreakerSnapshot[] = [];
    const hanging: BreakerStateStore = {
      publish: (_key, snapshot) => {
        published.push(snapshot);
        return new Promise<void>(() => {});
      },
      read: () => new Promise<undefined>(() => {}),
    };
    const breaker = circuitBreaker({
      clock,
      name: 'hang',
      store: hanging,
      trip: consecutive(1),
      openMs: 100,
    });
    const permit = breaker.tryAcquire()!;
    permit.failure(new Error('x'));
    expect(breaker.state).toBe('open'); // synchronously, without awaiting anything
    expect(breaker.tryAcquire()).toBeUndefined();
    await clock.advance(100);
    const probe = breaker.tryAcquire()!;
    probe.success();
    expect(breaker.state).toBe('closed');
    expect(published.map((s) => s.state)).toEqual(['open', 'half-open', 'closed']);
    void breaker.syncFromStore(); // a read that never answers leaves the breaker working
    expect(await breaker.execute(ok)).toBe('ok');
  });
});

describe('isolate() handles across a reset()', () => {
  it('a handle from before reset() does not release an isolation made after it', () => {
    const breaker = circuitBreaker({ clock: new VirtualClock() });
    const old = breaker.isolate();
    breaker.reset();
    expect(breaker.state).toBe('closed');
    const current = breaker.isolate();
    old.dispose();
    expect(breaker.state).toBe('isolated');
    current.dispose();
    expect(breaker.state).toBe('closed');
  });

  it('a restored isolation holds until reset(), whatever handles come and go', () => {
    const breaker = circuitBreaker({
      clock: new VirtualClock(),
      initialState: { version: 1, state: 'isolated', openRemainingMs: 0, trips: 0 },
    });
    const handle = breaker.isolate();
    handle.dispose();
    expect(breaker.state).toBe('isolated');
    breaker.reset();
    expect(breaker.state).toBe('closed');
  });
});
