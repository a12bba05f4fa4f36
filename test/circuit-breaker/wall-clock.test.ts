// A wall-clock jump while a breaker is open. bulwark measures on the monotonic
// clock, so the jump changes nothing. cockatiel computes its open duration from
// Date.now(), and the same jump either reopens its breaker at once or keeps it
// open for an hour: kept here as a documented comparison.

import { circuitBreaker, consecutive } from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { ConsecutiveBreaker, circuitBreaker as cockatielBreaker, handleAll } from 'cockatiel';
import { afterEach, describe, expect, it, vi } from 'vitest';

const HOUR = 3_600_000;
const fail = () => {
  throw new Error('down');
};

afterEach(() => {
  vi.restoreAllMocks();
});

function patchWallClock(): { jump: (ms: number) => void } {
  let offset = 0;
  const real = Date.now.bind(Date);
  vi.spyOn(Date, 'now').mockImplementation(() => real() + offset);
  return {
    jump: (ms) => {
      offset += ms;
    },
  };
}

describe('wall-clock immunity', () => {
  for (const jump of [HOUR, -HOUR]) {
    it(`keeps the open duration when the wall clock jumps ${jump > 0 ? 'forward' : 'back'} an hour`, async () => {
      const wall = patchWallClock();
      const clock = new VirtualClock();
      const breaker = circuitBreaker({ clock, trip: consecutive(1), openMs: 10_000 });
      await breaker.execute(fail).catch(() => undefined);
      wall.jump(jump);
      await clock.advance(9_999);
      expect(breaker.state).toBe('open');
      await clock.advance(1);
      expect(breaker.state).toBe('half-open');
      // The jump could not have mattered: the breaker never read the wall clock.
      expect(Date.now).toHaveBeenCalledTimes(0);
    });
  }

  it('keeps the open duration on the real system clock too, whichever way the wall clock jumps', async () => {
    const wall = patchWallClock();
    const breaker = circuitBreaker({ trip: consecutive(1), openMs: 60_000 }); // systemClock
    await breaker.execute(fail).catch(() => undefined);
    const before = breaker.stats().openRemainingMs;
    wall.jump(HOUR);
    const afterForward = breaker.stats().openRemainingMs;
    wall.jump(-2 * HOUR);
    const afterBack = breaker.stats().openRemainingMs;
    expect(breaker.state).toBe('open');
    expect(afterForward).toBeLessThanOrEqual(before);
    expect(afterBack).toBeLessThanOrEqual(afterForward);
    expect(before - afterBack).toBeLessThan(5_000); // only real time passed, never an hour
    expect(Date.now).toHaveBeenCalledTimes(0);
  });

  it('cockatiel’s breaker, by comparison, half-opens at once when the wall clock jumps forward', async () => {
    const wall = patchWallClock();
    const policy = cockatielBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(1) });
    await policy.execute(fail).catch(() => undefined);
    expect(policy.state).toBe(1); // CircuitState.Open
    wall.jump(HOUR);
    // No time has passed, yet the next call is let through as a half-open probe.
    expect(await policy.execute(() => 'through')).toBe('through');
  });

  it('cockatiel’s breaker, by comparison, stays open for an hour more when the wall clock jumps back', async () => {
    const wall = patchWallClock();
    const policy = cockatielBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(1) });
    await policy.execute(fail).catch(() => undefined);
    wall.jump(-HOUR);
    wall.jump(10_001); // the 10 s open duration has passed
    const error = await policy.execute(() => 'through').catch((e: unknown) => e);
    expect((error as { isBrokenCircuitError?: boolean }).isBrokenCircuitError).toBe(true);
  });
});
