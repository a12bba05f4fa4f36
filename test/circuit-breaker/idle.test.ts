// What an idle breaker holds: no timer at all, and no reference to the
// functions it ran. Checked with a WeakRef and a forced garbage collection.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  circuitBreaker,
  circuitBreakers,
  consecutive,
  failureRate,
  slowCallRate,
} from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { afterEach, describe, expect, it, vi } from 'vitest';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

afterEach(() => {
  vi.restoreAllMocks();
});

/** Lets the current job end (a WeakRef target lives until then), then collects. */
async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
}

describe('an idle breaker', () => {
  it('holds no reference to the functions it ran, whatever their outcome', async () => {
    const clock = new VirtualClock();
    const breakers = [
      circuitBreaker({ clock, trip: consecutive(3) }),
      circuitBreaker({
        clock,
        trip: failureRate({ threshold: 0.5, window: { kind: 'time', ms: 1_000, buckets: 4 } }),
      }),
      circuitBreaker({
        clock,
        trip: slowCallRate({ threshold: 0.5, slowerThanMs: 100 }),
        failureOn: () => false,
      }),
    ];
    const refs: WeakRef<object>[] = [];
    const use = async () => {
      for (const breaker of breakers) {
        const ok = async () => 'ok';
        const bad = async () => {
          throw new Error('down');
        };
        const sync = () => 'sync';
        refs.push(new WeakRef(ok), new WeakRef(bad), new WeakRef(sync));
        await breaker.execute(ok);
        await breaker.execute(bad).catch(() => undefined);
        await breaker.execute(sync);
      }
    };
    await use();
    await collect();
    expect(refs).toHaveLength(9);
    expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0);
    for (const breaker of breakers) expect(breaker.stats().admitted).toBe(3);
  });

  it('creates no timer, through a whole cycle of trip, open, half-open and close', async () => {
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const setIntervalSpy = vi.spyOn(globalThis, 'setInterval');
    const clock = new VirtualClock();
    const registry = circuitBreakers({
      clock,
      trip: [
        consecutive(2),
        failureRate({ threshold: 0.5, window: { kind: 'time', ms: 1_000, buckets: 10 } }),
      ],
      openMs: 500,
      halfOpen: { probeTimeoutMs: 300 },
    });
    for (let i = 0; i < 100; i++) await registry.get(`host-${i}`).execute(() => 'ok');
    const breaker = registry.get('host-0');
    for (let i = 0; i < 2; i++)
      await breaker.execute(() => Promise.reject(new Error('x'))).catch(() => undefined);
    expect(breaker.state).toBe('open');
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(500);
    const hung = breaker.tryAcquire();
    expect(hung?.probe).toBe(true);
    await clock.advance(300);
    await breaker.execute(() => 'ok');
    expect(breaker.state).toBe('closed');
    expect(clock.pendingTimers).toBe(0);
    expect(setTimeoutSpy).not.toHaveBeenCalled();
    expect(setIntervalSpy).not.toHaveBeenCalled();
  });
});
