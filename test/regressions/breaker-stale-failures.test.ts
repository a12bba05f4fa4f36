// A breaker tripped after a stall had ended, on the failures of calls admitted
// during the stall that settled after newer calls had already succeeded.
// Failures of calls admitted before the latest success no longer count.

import { circuitBreaker, consecutive, failureRate } from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { describe, expect, it } from 'vitest';

describe('failures of calls admitted before the latest success', () => {
  it('do not trip a consecutive breaker once a newer call has succeeded', () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock, trip: consecutive(3) });
    // Three calls admitted during a stall, then one after it.
    const stalled = [breaker.tryAcquire()!, breaker.tryAcquire()!, breaker.tryAcquire()!];
    const fresh = breaker.tryAcquire()!;
    fresh.success();
    // The stalled calls time out after the newer call succeeded.
    for (const permit of stalled) permit.failure(new Error('timed out'));
    expect(breaker.state).toBe('closed');
    expect(breaker.stats().staleFailures).toBe(3);
    expect(breaker.stats().failures).toBe(3);
    // Failures of calls admitted after the success still count.
    for (let i = 0; i < 3; i++) breaker.tryAcquire()!.failure(new Error('down'));
    expect(breaker.state).toBe('open');
  });

  it('do not trip a time-window failure-rate breaker after the stall has ended', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({
      clock,
      trip: failureRate({
        threshold: 0.5,
        minimumCalls: 10,
        window: { kind: 'time', ms: 10_000, buckets: 10 },
      }),
    });
    // 20 calls go into a stall; 1 s later the stall ends and 10 new calls succeed at once.
    const stalled = Array.from({ length: 20 }, () => breaker.tryAcquire()!);
    await clock.advance(1_000);
    for (let i = 0; i < 10; i++) breaker.tryAcquire()!.success(5);
    // The stalled calls hit their 1.5 s timeout afterwards.
    await clock.advance(500);
    for (const permit of stalled) permit.failure(new Error('timed out'), 1_500);
    expect(breaker.state).toBe('closed');
    expect(breaker.stats().staleFailures).toBe(20);
  });

  it('still count when no newer call has succeeded (a hard outage trips as before)', () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock, trip: consecutive(3) });
    const first = breaker.tryAcquire()!;
    first.success();
    const down = [breaker.tryAcquire()!, breaker.tryAcquire()!, breaker.tryAcquire()!];
    for (const permit of down) permit.failure(new Error('down'));
    expect(breaker.state).toBe('open');
    expect(breaker.stats().staleFailures).toBe(0);
  });
});
