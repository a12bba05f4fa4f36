// Differential test against opossum: for seeded sequences of successes,
// failures and pauses, a bulwark breaker built from
// breakerOptionsFromOpossum(o) opens at the same call as an opossum breaker
// built with o.
//
// opossum reads Date.now() and rotates its rolling window with setInterval, so
// in this file only (the one exception to "VirtualClock only") the global
// timers and Date are faked while opossum runs. The bulwark breaker runs on a
// VirtualClock that both start at 0 and advance together.
import { circuitBreaker } from '@bulwark/circuit-breaker';
import { seededRandom, VirtualClock } from '@bulwark/clock';
import { breakerOptionsFromOpossum, type OpossumOptions } from '@bulwark/interop';
import CircuitBreaker from 'opossum';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

beforeEach(() => {
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    now: 0,
  });
});
afterEach(() => {
  vi.useRealTimers();
});

type Step = { readonly pauseMs: number; readonly outcome: 'ok' | 'down' | 'filtered' };

interface Case {
  readonly options: OpossumOptions;
  readonly steps: readonly Step[];
}

const PERCENTAGES = [0, 7, 10, 25, 29, 33, 50, 57, 66, 75, 90, 99, 100];

function makeCase(seed: number): Case {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const windowMs = pick([1_000, 3_000, 10_000, 2_500]);
  const options: OpossumOptions = {
    errorThresholdPercentage: random() < 0.5 ? pick(PERCENTAGES) : Math.floor(random() * 101),
    volumeThreshold: Math.floor(random() * 8),
    rollingCountTimeout: windowMs,
    rollingCountBuckets: pick([1, 2, 3, 5, 10]),
    timeout: false,
    resetTimeout: 60_000,
    errorFilter: (error) => (error as Error).message === 'filtered',
  };
  const failureShare = 0.1 + random() * 0.7;
  const steps: Step[] = [];
  for (let i = 0; i < 80; i++) {
    const r = random();
    const pauseMs = r < 0.6 ? 0 : Math.floor(random() * windowMs * 0.6);
    const x = random();
    steps.push({ pauseMs, outcome: x < failureShare ? 'down' : x < failureShare + 0.05 ? 'filtered' : 'ok' });
  }
  return { options, steps };
}

/** The index of the call after which each breaker is open, or -1 when it never opens. */
async function firstTrip(c: Case): Promise<{ opossum: number; bulwark: number }> {
  const clock = new VirtualClock();
  const opossum = new CircuitBreaker(
    async (outcome: Step['outcome']) => {
      if (outcome !== 'ok') throw new Error(outcome);
      return outcome;
    },
    { ...c.options } as CircuitBreaker.Options,
  );
  const bulwark = circuitBreaker({ ...breakerOptionsFromOpossum(c.options).options, clock });
  const trips = { opossum: -1, bulwark: -1 };
  try {
    for (let i = 0; i < c.steps.length; i++) {
      const { pauseMs, outcome } = c.steps[i]!;
      if (pauseMs > 0) {
        vi.advanceTimersByTime(pauseMs);
        await clock.advance(pauseMs);
      }
      await opossum.fire(outcome).catch(() => undefined);
      await bulwark
        .execute(() => (outcome === 'ok' ? outcome : Promise.reject(new Error(outcome))))
        .catch(() => undefined);
      if (trips.opossum < 0 && opossum.opened) trips.opossum = i;
      if (trips.bulwark < 0 && bulwark.state === 'open') trips.bulwark = i;
      if (trips.opossum >= 0 || trips.bulwark >= 0) break;
    }
  } finally {
    opossum.shutdown();
  }
  return trips;
}

describe('breakerOptionsFromOpossum against opossum', () => {
  it('opens at the same call as opossum for 300 seeded sequences', async () => {
    let tripped = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const c = makeCase(seed);
      const trips = await firstTrip(c);
      expect({ seed, ...trips }).toEqual({ seed, opossum: trips.opossum, bulwark: trips.opossum });
      if (trips.opossum >= 0) tripped++;
    }
    // The sequences exercise both outcomes: most open somewhere, some never do.
    expect(tripped).toBeGreaterThan(150);
    expect(tripped).toBeLessThan(300);
  });

  it('agrees at the boundaries: exactly the percentage does not open, just above it does', async () => {
    const steps = (outcomes: Step['outcome'][]): Step[] =>
      outcomes.map((outcome) => ({ pauseMs: 0, outcome }));
    // 7 of 100 failed is exactly 7%: opossum computes 7 / 100 * 100 = 7.000000000000001, and opens.
    const sevenPercent: Step['outcome'][] = [...Array<'ok'>(93).fill('ok'), ...Array<'down'>(7).fill('down')];
    const c1: Case = { options: { errorThresholdPercentage: 7, timeout: false }, steps: steps(sevenPercent) };
    expect(await firstTrip(c1)).toEqual({ opossum: 99, bulwark: 99 });
    // 1 of 2 is exactly 50%: neither opens; 2 of 3 does.
    const c2: Case = { options: { timeout: false }, steps: steps(['ok', 'down', 'down']) };
    expect(await firstTrip(c2)).toEqual({ opossum: 2, bulwark: 2 });
  });
});
