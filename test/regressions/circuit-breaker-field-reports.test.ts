// Failures users of other circuit breakers have reported (listed in the
// circuit-breaker issue), each pinned down against bulwark's breaker on a
// VirtualClock: half-open admitting too many calls or getting stuck, late
// results from before a trip moving the state, and per-host breakers leaking.
import { circuitBreaker, circuitBreakers, consecutive } from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { describe, expect, it } from 'vitest';

const down = () => Promise.reject(new Error('down'));

describe('circuit breaker field reports', () => {
  it('half-open lets exactly maxProbes calls of a concurrent burst through', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({
      clock,
      trip: consecutive(1),
      openMs: 1_000,
      halfOpen: { maxProbes: 3 },
    });
    await breaker.execute(down).catch(() => undefined);
    await clock.advance(1_000);
    let running = 0;
    const release: Array<() => void> = [];
    const burst = Array.from({ length: 100 }, () =>
      breaker
        .execute(
          () =>
            new Promise<string>((resolve) => {
              running++;
              release.push(() => resolve('ok'));
            }),
        )
        .catch((e: unknown) => e),
    );
    await clock.advance(0);
    expect(running).toBe(3);
    for (const r of release) r();
    const results = await Promise.all(burst);
    expect(results.filter((r) => r === 'ok')).toHaveLength(3);
    expect(breaker.state).toBe('closed');
  });

  it('half-open is not stuck when a probe never settles', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({
      clock,
      trip: consecutive(1),
      openMs: 1_000,
      halfOpen: { probeTimeoutMs: 5_000 },
    });
    await breaker.execute(down).catch(() => undefined);
    await clock.advance(1_000);
    void breaker.execute(() => new Promise<never>(() => {})); // the probe hangs forever
    await clock.advance(4_999);
    await expect(breaker.execute(() => 'refused')).rejects.toMatchObject({ code: 'ERR_CIRCUIT_OPEN' });
    await clock.advance(1);
    expect(await breaker.execute(() => 'probe')).toBe('probe');
    expect(breaker.state).toBe('closed');
  });

  it('a slow success that started before a trip does not close the breaker early', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock, trip: consecutive(2), openMs: 10_000 });
    const early = breaker.tryAcquire()!; // admitted while closed, still running
    await breaker.execute(down).catch(() => undefined);
    await breaker.execute(down).catch(() => undefined);
    expect(breaker.state).toBe('open');
    early.success(30_000);
    expect(breaker.state).toBe('open');
    expect(breaker.stats().openRemainingMs).toBe(10_000);
  });

  it('a late failure from before a recovery does not reopen the breaker', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock, trip: consecutive(1), openMs: 100 });
    const early = breaker.tryAcquire()!;
    await breaker.execute(down).catch(() => undefined);
    await clock.advance(100);
    await breaker.execute(() => 'probe');
    expect(breaker.state).toBe('closed');
    early.failure(new Error('timed out long ago'));
    expect(breaker.state).toBe('closed');
  });

  it('per-host breakers stay bounded however many hosts are seen', async () => {
    const registry = circuitBreakers({ clock: new VirtualClock(), maxKeys: 100 });
    for (let i = 0; i < 10_000; i++) await registry.get(`host-${i}.example`).execute(() => 'ok');
    expect(registry.size).toBe(100);
    expect(registry.evicted).toBe(9_900);
  });
});
